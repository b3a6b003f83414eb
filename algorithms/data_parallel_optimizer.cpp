// Data-parallel optimizer step: replicated AdamW with bucketed gradient all-reduce (stage 0) or
// ZeRO-1 sharded AdamW (stage 1). The design and the equations are in data_parallel_optimizer.h.
#include "algorithms/data_parallel_optimizer.h"

#include <algorithm>
#include <cmath>

#include "algorithms/grad_clip.h"
#include "kernels/backend.h"

namespace rlaif {
namespace {

// A bucket's size: large enough that a collective's latency is small beside its bytes, small
// enough that the packing buffer is a minor cost (PyTorch DDP's default bucket is 25 MiB).
constexpr size_t kBucketBytes = size_t{32} << 20;

// param's elements as a flat vector (a view).
Tensor flat_view(const Tensor& t) {
  return t.reshape({t.numel()});
}

// Averages the gradients of `params` over comm's ranks, packing consecutive gradients of one
// dtype and device into buckets of about kBucketBytes. A gradient larger than a bucket is reduced
// in place. Summation order per element is the communicator's, whatever the packing, so the
// result is what one all_reduce_mean per gradient gives.
void all_reduce_mean_bucketed(Communicator& comm,
                              const std::vector<std::pair<std::string, Variable>>& params,
                              Tensor& scratch) {
  std::vector<Tensor> bucket;
  size_t bucket_bytes = 0;
  auto flush = [&] {
    if (bucket.empty()) return;
    if (bucket.size() == 1) {
      comm.all_reduce_mean(bucket[0]);
    } else {
      const DType dtype = bucket[0].dtype();
      const Device device = bucket[0].device();
      const int64_t n = static_cast<int64_t>(bucket_bytes / dtype_size(dtype));
      if (!scratch.defined() || scratch.dtype() != dtype || scratch.device() != device ||
          scratch.numel() < n) {
        scratch =
            Tensor::empty({std::max<int64_t>(n, kBucketBytes / dtype_size(dtype))}, dtype, device);
      }
      Backend& be = backend_for(device);
      Tensor packed = scratch.slice(0, n);
      int64_t at = 0;
      for (const Tensor& g : bucket) {
        be.copy(g, packed.slice(at, at + g.numel()));
        at += g.numel();
      }
      comm.all_reduce_mean(packed);
      at = 0;
      for (const Tensor& g : bucket) {
        be.copy(packed.slice(at, at + g.numel()), g);
        at += g.numel();
      }
    }
    bucket.clear();
    bucket_bytes = 0;
  };
  for (const auto& [name, p] : params) {
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (!bucket.empty() && (g.dtype() != bucket[0].dtype() || g.device() != bucket[0].device() ||
                            bucket_bytes + g.nbytes() > kBucketBytes)) {
      flush();
    }
    bucket.push_back(g);
    bucket_bytes += g.nbytes();
  }
  flush();
}

}  // namespace

// Stage 1's state: the flat vectors and this rank's chunk of the optimizer state.
struct DataParallelOptimizer::Sharded {
  DType dtype = DType::f32;
  Device device;
  int64_t chunk = 0;             // c = ⌈P / R⌉ elements per rank
  int64_t first = 0;             // this rank's chunk is [first, first + chunk) of the flat vector
  std::vector<int64_t> offset;   // parameter i occupies [offset[i], offset[i] + numel)
  std::vector<double> decay;     // parameter i's weight decay
  std::vector<bool> has_grad;    // which parameters reduce_gradients() saw a gradient for
  Tensor flat_grad, flat_param;  // [R·c], the parameters' dtype
  Tensor m, v, master;           // [c] f32; master undefined for f32 parameters
  Tensor piece_norms;            // [number of parameters] f32: Σg² of each parameter's piece
  int64_t step_count = 0;

  // The part of parameter i inside this rank's chunk: flat positions [lo, hi) (lo == hi: none).
  std::pair<int64_t, int64_t> piece(size_t i, int64_t numel) const {
    const int64_t lo = std::max(offset[i], first);
    const int64_t hi = std::min(offset[i] + numel, first + chunk);
    return {lo, std::max(lo, hi)};
  }
};

DataParallelOptimizer::DataParallelOptimizer(std::vector<std::pair<std::string, Variable>> params,
                                             AdamWOptions options, Communicator& comm,
                                             int zero_stage)
    : params_(std::move(params)), options_(options), comm_(comm), zero_stage_(zero_stage) {
  RLAIF_CHECK(zero_stage == 0 || zero_stage == 1, "--zero ", zero_stage,
              ": only ZeRO stages 0 (replicated optimizer state) and 1 (sharded) exist");
  if (zero_stage_ == 0) {
    replicated_ = std::make_unique<AdamW>(params_, options_);
    return;
  }
  AdamW::check(params_, options_);
  RLAIF_CHECK(!params_.empty(), "--zero 1: no trainable parameters");

  auto s = std::make_unique<Sharded>();
  const Variable& p0 = params_.at(0).second;
  s->dtype = p0.dtype();
  s->device = p0.device();
  int64_t total = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    RLAIF_CHECK(p.dtype() == s->dtype && p.device() == s->device, "--zero 1: parameter '", name,
                "' is ", p.data(), " but '", params_[0].first, "' is ", p0.data(),
                "; ZeRO-1 lays every parameter in one flat vector, so they must share a dtype "
                "and a device");
    s->offset.push_back(total);
    s->decay.push_back(AdamW::weight_decay_for(p, options_));
    total += p.numel();
  }
  const int64_t ranks = comm_.size();
  s->chunk = std::max<int64_t>(1, (total + ranks - 1) / ranks);
  s->first = comm_.rank() * s->chunk;
  s->has_grad.assign(params_.size(), false);
  Backend& be = backend_for(s->device);
  s->flat_grad = Tensor::zeros({s->chunk * ranks}, s->dtype, s->device);
  s->flat_param = Tensor::zeros({s->chunk * ranks}, s->dtype, s->device);
  s->m = Tensor::zeros({s->chunk}, DType::f32, s->device);
  s->v = Tensor::zeros({s->chunk}, DType::f32, s->device);
  if (s->dtype != DType::f32) s->master = Tensor::zeros({s->chunk}, DType::f32, s->device);
  s->piece_norms = Tensor::zeros({static_cast<int64_t>(params_.size())}, DType::f32, s->device);
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& data = params_[i].second.data();
    auto [lo, hi] = s->piece(i, data.numel());
    if (lo == hi || !s->master.defined()) continue;
    // The master copy starts as the parameter, as AdamW's does.
    be.cast(flat_view(data).slice(lo - s->offset[i], hi - s->offset[i]),
            s->master.slice(lo - s->first, hi - s->first));
  }
  sharded_ = std::move(s);
}

DataParallelOptimizer::~DataParallelOptimizer() = default;

double DataParallelOptimizer::reduce_gradients(double max_norm) {
  if (zero_stage_ == 0) {
    if (comm_.size() > 1) all_reduce_mean_bucketed(comm_, params_, bucket_scratch_);
    return clip_grad_norm(params_, max_norm);
  }
  Sharded& s = *sharded_;
  Backend& be = backend_for(s.device);
  const int64_t ranks = comm_.size();
  // 1. Reduce-scatter the flat gradient; a parameter without a gradient contributes zeros.
  be.fill(s.flat_grad, 0.0);
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& g = params_[i].second.grad();
    s.has_grad[i] = g.defined();
    if (g.defined()) be.copy(g, s.flat_grad.slice(s.offset[i], s.offset[i] + g.numel()));
  }
  Tensor mine = s.flat_grad.slice(s.first, s.first + s.chunk);
  comm_.reduce_scatter_sum(s.flat_grad, mine);
  if (ranks > 1) {
    // Divide, as the communicators' means do (a multiply by 1/R would round differently).
    Tensor divisor = Tensor::empty({}, s.dtype, s.device);
    be.fill(divisor, static_cast<double>(ranks));
    be.binary(BinaryOp::div, mine, divisor, mine);
  }
  // 2. The global norm: Σg² of each parameter's piece, summed over ranks per parameter, then over
  // parameters in double in their order, as global_grad_norm does (so one rank matches stage 0
  // bit for bit).
  be.fill(s.piece_norms, 0.0);
  for (size_t i = 0; i < params_.size(); ++i) {
    auto [lo, hi] = s.piece(i, params_[i].second.numel());
    if (lo == hi || !s.has_grad[i]) continue;
    be.squared_norm(s.flat_grad.slice(lo, hi), s.piece_norms.slice(i, i + 1).reshape({}));
  }
  comm_.all_reduce_sum(s.piece_norms);
  const std::vector<float> sums = s.piece_norms.to_vector<float>();
  double total = 0.0;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (s.has_grad[i]) total += static_cast<double>(sums[i]);
  }
  const double norm = std::sqrt(total);
  const double coef = clip_factor(norm, max_norm);
  if (coef != 1.0) be.affine(mine, static_cast<float>(coef), 0.0f, mine);
  return norm;
}

void DataParallelOptimizer::step(double lr) {
  if (zero_stage_ == 0) {
    replicated_->step(lr);
    return;
  }
  RLAIF_CHECK(std::isfinite(lr) && lr >= 0.0, "DataParallelOptimizer::step: lr is ", lr,
              " but must be a finite number ≥ 0");
  Sharded& s = *sharded_;
  Backend& be = backend_for(s.device);
  ++s.step_count;
  // 3. AdamW on this rank's pieces. An f32 parameter is updated in place, as AdamW does, so its
  // piece is first taken from the parameter itself (it may have been loaded since the last step).
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!s.has_grad[i]) continue;
    const Tensor& data = params_[i].second.data();
    auto [lo, hi] = s.piece(i, data.numel());
    if (lo == hi) continue;
    const Tensor param = s.flat_param.slice(lo, hi);
    if (!s.master.defined())
      be.copy(flat_view(data).slice(lo - s.offset[i], hi - s.offset[i]), param);
    const int64_t a = lo - s.first, b = hi - s.first;
    AdamWHyper h;
    h.lr = lr;
    h.beta1 = options_.beta1;
    h.beta2 = options_.beta2;
    h.eps = options_.eps;
    h.weight_decay = s.decay[i];
    h.step = s.step_count;
    be.adamw_step(param, s.flat_grad.slice(lo, hi), s.m.slice(a, b), s.v.slice(a, b),
                  s.master.defined() ? s.master.slice(a, b) : Tensor(), h);
  }
  // 4. Every rank's updated chunk to every rank, then into the parameters.
  comm_.all_gather(s.flat_param.slice(s.first, s.first + s.chunk), s.flat_param);
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!s.has_grad[i]) continue;
    const Tensor& data = params_[i].second.data();
    be.copy(s.flat_param.slice(s.offset[i], s.offset[i] + data.numel()), data);
  }
}

void DataParallelOptimizer::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

int64_t DataParallelOptimizer::step_count() const {
  return zero_stage_ == 0 ? replicated_->step_count() : sharded_->step_count;
}

int64_t DataParallelOptimizer::state_bytes() const {
  int64_t bytes = 0;
  if (zero_stage_ == 0) {
    for (size_t i = 0; i < params_.size(); ++i) {
      const Variable& p = params_[i].second;
      bytes += 2 * p.numel() * 4 + (p.dtype() != DType::f32 ? p.numel() * 4 : 0);
    }
    return bytes;
  }
  const Sharded& s = *sharded_;
  return static_cast<int64_t>(s.m.nbytes() + s.v.nbytes() +
                              (s.master.defined() ? s.master.nbytes() : 0));
}

std::vector<std::pair<std::string, Tensor>> DataParallelOptimizer::state() const {
  if (zero_stage_ == 0) return replicated_->state();
  const Sharded& s = *sharded_;
  // Gather one kind of state at a time, so the transient full copy is one f32 vector.
  auto gather = [&](const Tensor& mine) {
    Tensor whole = Tensor::empty({s.chunk * comm_.size()}, DType::f32, s.device);
    comm_.all_gather(mine, whole);
    return whole.to(Device::cpu());
  };
  const Tensor m = gather(s.m), v = gather(s.v);
  const Tensor master = s.master.defined() ? gather(s.master) : Tensor();
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    auto part = [&](const Tensor& whole) {
      return whole.slice(s.offset[i], s.offset[i] + p.numel()).reshape(p.shape());
    };
    out.emplace_back("exp_avg." + name, part(m));
    out.emplace_back("exp_avg_sq." + name, part(v));
    if (master.defined()) out.emplace_back("master." + name, part(master));
  }
  return out;
}

void DataParallelOptimizer::load_state(const std::vector<std::pair<std::string, Tensor>>& state,
                                       int64_t step_count) {
  if (zero_stage_ == 0) {
    replicated_->load_state(state, step_count);
    return;
  }
  RLAIF_CHECK(step_count >= 0, "DataParallelOptimizer::load_state: step count is ", step_count,
              " but must be ≥ 0");
  Sharded& s = *sharded_;
  std::vector<std::pair<std::string, Shape>> expected;
  for (const auto& [name, p] : params_) {
    expected.emplace_back("exp_avg." + name, p.shape());
    expected.emplace_back("exp_avg_sq." + name, p.shape());
    if (s.master.defined()) expected.emplace_back("master." + name, p.shape());
  }
  const std::vector<const Tensor*> source =
      match_optimizer_state("DataParallelOptimizer::load_state", expected, state);
  const size_t per_param = s.master.defined() ? 3 : 2;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto [lo, hi] = s.piece(i, params_[i].second.numel());
    if (lo == hi) continue;
    const int64_t a = lo - s.offset[i], b = hi - s.offset[i];
    auto take = [&](size_t k, const Tensor& into) {
      into.slice(lo - s.first, hi - s.first)
          .copy_from(flat_view(*source[per_param * i + k]).slice(a, b));
    };
    take(0, s.m);
    take(1, s.v);
    if (s.master.defined()) take(2, s.master);
  }
  s.step_count = step_count;
}

}  // namespace rlaif
