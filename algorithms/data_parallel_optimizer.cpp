// Data-parallel optimizer step: replicated AdamW with bucketed gradient all-reduce (stage 0) or
// ZeRO-1 sharded AdamW (stage 1). The design and the equations are in data_parallel_optimizer.h.
#include "algorithms/data_parallel_optimizer.h"

#include <algorithm>
#include <cmath>

#include "algorithms/grad_clip.h"
#include "algorithms/gradient_buckets.h"
#include "kernels/backend.h"

namespace rlaif {
namespace {

// param's elements as a flat vector (a view).
Tensor flat_view(const Tensor& t) {
  return t.reshape({t.numel()});
}

// Averages the gradients of `params` over comm's ranks, packing consecutive gradients of one
// dtype and device into buckets of about bucket_bytes. A gradient larger than a bucket is reduced
// in place. Summation order per element is the communicator's, whatever the packing, so the
// result is what one all_reduce_mean per gradient gives.
void all_reduce_mean_bucketed(Communicator& comm,
                              const std::vector<std::pair<std::string, Variable>>& params,
                              size_t bucket_bytes_max, Tensor& scratch) {
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
        scratch = Tensor::empty(
            {std::max<int64_t>(n, static_cast<int64_t>(bucket_bytes_max / dtype_size(dtype)))},
            dtype, device);
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
                            bucket_bytes + g.nbytes() > bucket_bytes_max)) {
      flush();
    }
    bucket.push_back(g);
    bucket_bytes += g.nbytes();
  }
  flush();
}

}  // namespace

// Stage 1's layout and this rank's shards (see the header for the algorithm). The flat vector of
// P elements is cut into buckets of S·R elements; rank r owns elements [r·S, (r+1)·S) of every
// bucket. A collective then moves one bucket through a buffer of S·R elements, so no rank ever
// holds a second full-size copy of the gradients or the parameters: per rank, the state is m, v
// (and master) for its ~P/R elements, their reduced gradients, and the bucket buffer.
struct DataParallelOptimizer::Sharded {
  // The part of parameter `param` at flat positions [lo, hi) that this rank owns; its shard
  // index is `local`.
  struct Piece {
    size_t param;
    int64_t lo, hi, local;
  };
  DType dtype = DType::f32;
  Device device;
  int64_t total = 0;            // P
  int64_t per_rank = 0;         // S: elements of each bucket this rank owns
  int64_t buckets = 0;          // ⌈P / (S·R)⌉
  std::vector<int64_t> offset;  // parameter i occupies [offset[i], offset[i] + numel)
  std::vector<double> decay;    // parameter i's weight decay
  std::vector<bool> has_grad;   // which parameters reduce_gradients() saw a gradient for
  std::vector<Piece> pieces;    // in flat order
  Tensor grad;                  // [buckets·S], the parameters' dtype: the reduced gradients
  Tensor m, v, master;          // [buckets·S] f32; master undefined for f32 parameters
  int64_t step_count = 0;
};

namespace {

// The flat positions [a, e) of a parameter at `offset`, `numel` long, that lie inside [lo, hi);
// a == e when none do.
std::pair<int64_t, int64_t> overlap(int64_t offset, int64_t numel, int64_t lo, int64_t hi) {
  const int64_t a = std::max(offset, lo), b = std::min(offset + numel, hi);
  return {a, std::max(a, b)};
}

}  // namespace

DataParallelOptimizer::DataParallelOptimizer(std::vector<std::pair<std::string, Variable>> params,
                                             AdamWOptions options, Communicator& comm,
                                             int zero_stage, size_t bucket_bytes)
    : params_(std::move(params)),
      options_(options),
      comm_(comm),
      zero_stage_(zero_stage),
      bucket_bytes_(bucket_bytes) {
  RLAIF_CHECK(zero_stage == 0 || zero_stage == 1, "--zero ", zero_stage,
              ": only ZeRO stages 0 (replicated optimizer state) and 1 (sharded) exist");
  for (size_t i = 0; i < params_.size(); ++i) index_.emplace(params_[i].second.identity(), i);
  if (zero_stage_ == 0) {
    replicated_ = std::make_unique<AdamW>(params_, options_);
    // One flat layout needs one dtype and one device; otherwise reduce_gradients() packs
    // buckets as it goes, after the backward pass.
    bool uniform = true;
    for (const auto& [name, p] : params_)
      uniform = uniform && p.dtype() == params_[0].second.dtype() &&
                p.device() == params_[0].second.device();
    if (uniform && distributed() && !params_.empty()) {
      const int64_t span = std::max<int64_t>(
          1, static_cast<int64_t>(bucket_bytes_ / dtype_size(params_[0].second.dtype())));
      buckets_ =
          std::make_unique<GradientBuckets>(params_, comm_, span, GradientBuckets::Reduction::mean);
    }
    return;
  }
  AdamW::check(params_, options_);
  RLAIF_CHECK(!params_.empty(), "--zero 1: no trainable parameters");

  auto s = std::make_unique<Sharded>();
  const Variable& p0 = params_[0].second;
  s->dtype = p0.dtype();
  s->device = p0.device();
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    RLAIF_CHECK(p.dtype() == s->dtype && p.device() == s->device, "--zero 1: parameter '", name,
                "' is ", p.data(), " but '", params_[0].first, "' is ", p0.data(),
                "; ZeRO-1 lays every parameter in one flat vector, so they must share a dtype "
                "and a device");
    s->offset.push_back(s->total);
    s->decay.push_back(AdamW::weight_decay_for(p, options_));
    s->total += p.numel();
  }
  const int64_t ranks = comm_.size(), rank = comm_.rank();
  const int64_t bucket_elements =
      std::max<int64_t>(ranks, static_cast<int64_t>(bucket_bytes_ / dtype_size(s->dtype)));
  s->per_rank =
      std::max<int64_t>(1, std::min((s->total + ranks - 1) / ranks, bucket_elements / ranks));
  const int64_t span = s->per_rank * ranks;
  s->buckets = (s->total + span - 1) / span;
  for (int64_t b = 0; b < s->buckets; ++b) {
    const int64_t lo = b * span + rank * s->per_rank, hi = lo + s->per_rank;
    for (size_t i = 0; i < params_.size(); ++i) {
      auto [a, e] = overlap(s->offset[i], params_[i].second.numel(), lo, hi);
      if (a < e) s->pieces.push_back({i, a, e, b * s->per_rank + (a - lo)});
    }
  }
  const int64_t shard = s->buckets * s->per_rank;
  s->has_grad.assign(params_.size(), false);
  Backend& be = backend_for(s->device);
  s->grad = Tensor::zeros({shard}, s->dtype, s->device);
  s->m = Tensor::zeros({shard}, DType::f32, s->device);
  s->v = Tensor::zeros({shard}, DType::f32, s->device);
  if (s->dtype != DType::f32) {
    // The master copy starts as the parameter, as AdamW's does.
    s->master = Tensor::zeros({shard}, DType::f32, s->device);
    for (const Sharded::Piece& q : s->pieces) {
      const Tensor& data = params_[q.param].second.data();
      be.cast(flat_view(data).slice(q.lo - s->offset[q.param], q.hi - s->offset[q.param]),
              s->master.slice(q.local, q.local + (q.hi - q.lo)));
    }
  }
  // Stage 1's reduce-scatter: bucket b's reduced chunk r lands in rank r's shard at b·S.
  buckets_ = std::make_unique<GradientBuckets>(params_, comm_, span,
                                               GradientBuckets::Reduction::scatter_sum, s->grad);
  sharded_ = std::move(s);
}

DataParallelOptimizer::~DataParallelOptimizer() = default;

bool DataParallelOptimizer::distributed() const {
  // A one-rank NCCL communicator counts: its run exercises the multi-GPU path (the GPU check).
  return comm_.size() > 1 || comm_.runs_alongside_compute();
}

GradientReadyScope DataParallelOptimizer::overlap_backward() {
  if (!buckets_ || !distributed()) return GradientReadyScope(GradientReadyFn());
  buckets_->begin();
  overlapping_ = true;
  return GradientReadyScope([this](const Variable& leaf) {
    auto it = index_.find(leaf.identity());
    if (it != index_.end()) buckets_->ready(it->second);  // other leaves are not ours
  });
}

void DataParallelOptimizer::reduce_buckets() {
  if (!overlapping_) buckets_->begin();
  overlapping_ = false;
  buckets_->finish();
}

double DataParallelOptimizer::reduce_gradients(double max_norm) {
  if (zero_stage_ == 0) {
    if (buckets_) {
      reduce_buckets();
    } else if (distributed()) {
      all_reduce_mean_bucketed(comm_, params_, bucket_bytes_, bucket_scratch_);
    }
    const double norm = global_grad_norm(params_);
    grad_scale_ = static_cast<float>(clip_factor(norm, max_norm));
    return norm;
  }
  Sharded& s = *sharded_;
  Backend& be = backend_for(s.device);
  const int64_t ranks = comm_.size();
  for (size_t i = 0; i < params_.size(); ++i) s.has_grad[i] = params_[i].second.grad().defined();
  // 1. Reduce-scatter bucket by bucket (during the backward pass under overlap_backward()); a
  // parameter without a gradient contributes zeros.
  reduce_buckets();
  if (ranks > 1) {
    // Divide, as the communicators' means do (a multiply by 1/R would round differently).
    Tensor divisor = Tensor::empty({}, s.dtype, s.device);
    be.fill(divisor, static_cast<double>(ranks));
    be.binary(BinaryOp::div, s.grad, divisor, s.grad);
  }
  // 2. The global norm: Σg² of each piece; per parameter, the pieces' sums (in double, rounded to
  // f32 once), summed over ranks; then over parameters in double in their order, as
  // global_grad_norm does. A parameter in one piece on one rank thus gives exactly
  // global_grad_norm's number.
  std::vector<Tensor> piece_grads;
  std::vector<size_t> piece_of;  // piece_grads[j] is piece piece_of[j]
  for (size_t k = 0; k < s.pieces.size(); ++k) {
    const Sharded::Piece& q = s.pieces[k];
    if (!s.has_grad[q.param]) continue;
    piece_grads.push_back(s.grad.slice(q.local, q.local + (q.hi - q.lo)));
    piece_of.push_back(k);
  }
  Tensor piece_sums =
      Tensor::empty({static_cast<int64_t>(piece_grads.size())}, DType::f32, s.device);
  be.squared_norms(piece_grads, piece_sums);
  const std::vector<float> piece_values = piece_sums.to_vector<float>();
  std::vector<double> per_param(params_.size(), 0.0);
  for (size_t j = 0; j < piece_of.size(); ++j) {
    per_param[s.pieces[piece_of[j]].param] += piece_values[j];
  }
  std::vector<float> rounded(per_param.begin(), per_param.end());
  Tensor param_sums = Tensor::from_vector(rounded, {static_cast<int64_t>(rounded.size())});
  if (s.device.type != DeviceType::cpu) param_sums = param_sums.to(s.device);
  comm_.all_reduce_sum(param_sums);
  const std::vector<float> sums = param_sums.to_vector<float>();
  double total = 0.0;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (s.has_grad[i]) total += static_cast<double>(sums[i]);
  }
  const double norm = std::sqrt(total);
  grad_scale_ = static_cast<float>(clip_factor(norm, max_norm));
  return norm;
}

void DataParallelOptimizer::step(double lr) {
  // The clipping factor of the last reduce_gradients(), used once.
  const float grad_scale = grad_scale_;
  grad_scale_ = 1.0f;
  if (zero_stage_ == 0) {
    replicated_->step(lr, grad_scale);
    return;
  }
  RLAIF_CHECK(std::isfinite(lr) && lr >= 0.0, "DataParallelOptimizer::step: lr is ", lr,
              " but must be a finite number ≥ 0");
  Sharded& s = *sharded_;
  Backend& be = backend_for(s.device);
  ++s.step_count;
  // 3. AdamW on this rank's pieces, written straight into the parameters (an f32 parameter is
  // its own master copy, as in AdamW), in one adamw_steps call.
  std::vector<AdamWTensors> entries;
  for (const Sharded::Piece& q : s.pieces) {
    if (!s.has_grad[q.param]) continue;
    const Tensor& data = params_[q.param].second.data();
    const int64_t a = q.local, b = q.local + (q.hi - q.lo);
    entries.push_back({flat_view(data).slice(q.lo - s.offset[q.param], q.hi - s.offset[q.param]),
                       s.grad.slice(a, b), s.m.slice(a, b), s.v.slice(a, b),
                       s.master.defined() ? s.master.slice(a, b) : Tensor(), s.decay[q.param]});
  }
  be.adamw_steps(entries, adamw_hyper(options_, lr, s.step_count), grad_scale);
  // 4. Bucket by bucket, every rank's updated pieces to every rank, through the bucket scratch
  // buffer (the reduce-scatter is done with it by this point).
  const Tensor& bucket = buckets_->scratch();
  const int64_t ranks = comm_.size(), rank = comm_.rank(), span = s.per_rank * ranks;
  for (int64_t b = 0; b < s.buckets; ++b) {
    const int64_t lo = b * span, hi = lo + span;
    const int64_t mine = lo + rank * s.per_rank;
    for (size_t i = 0; i < params_.size(); ++i) {
      auto [a, e] = overlap(s.offset[i], params_[i].second.numel(), mine, mine + s.per_rank);
      if (a == e || !s.has_grad[i]) continue;
      be.copy(flat_view(params_[i].second.data()).slice(a - s.offset[i], e - s.offset[i]),
              bucket.slice(a - lo, e - lo));
    }
    comm_.all_gather(bucket.slice(rank * s.per_rank, (rank + 1) * s.per_rank), bucket);
    for (size_t i = 0; i < params_.size(); ++i) {
      auto [a, e] = overlap(s.offset[i], params_[i].second.numel(), lo, hi);
      if (a == e || !s.has_grad[i]) continue;
      be.copy(bucket.slice(a - lo, e - lo),
              flat_view(params_[i].second.data()).slice(a - s.offset[i], e - s.offset[i]));
    }
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

std::vector<std::pair<std::string, Tensor>> DataParallelOptimizer::state(bool wanted) const {
  if (zero_stage_ == 0) {
    if (!wanted) return {};
    return replicated_->state();
  }
  const Sharded& s = *sharded_;
  const int64_t ranks = comm_.size(), span = s.per_rank * ranks;
  std::vector<std::pair<std::string, Tensor>> out;
  out.reserve(params_.size() * 3);
  if (wanted) {
    for (const auto& [name, p] : params_) {
      out.emplace_back("exp_avg." + name, Tensor::zeros(p.shape(), DType::f32));
      out.emplace_back("exp_avg_sq." + name, Tensor::zeros(p.shape(), DType::f32));
      if (s.master.defined())
        out.emplace_back("master." + name, Tensor::zeros(p.shape(), DType::f32));
    }
  }
  const size_t per_param = s.master.defined() ? 3 : 2;
  // One bucket of one kind of state at a time through an f32 buffer of a bucket's size.
  Tensor gathered = Tensor::empty({span}, DType::f32, s.device);
  auto collect = [&](const Tensor& shard, size_t kind) {
    for (int64_t b = 0; b < s.buckets; ++b) {
      comm_.all_gather(shard.slice(b * s.per_rank, (b + 1) * s.per_rank), gathered);
      if (!wanted) continue;
      const Tensor host =
          gathered.device().type == DeviceType::cpu ? gathered : gathered.to(Device::cpu());
      const int64_t lo = b * span;
      for (size_t i = 0; i < params_.size(); ++i) {
        auto [a, e] = overlap(s.offset[i], params_[i].second.numel(), lo, lo + span);
        if (a == e) continue;
        flat_view(out[per_param * i + kind].second)
            .slice(a - s.offset[i], e - s.offset[i])
            .copy_from(host.slice(a - lo, e - lo));
      }
    }
  };
  collect(s.m, 0);
  collect(s.v, 1);
  if (s.master.defined()) collect(s.master, 2);
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
  for (const Sharded::Piece& q : s.pieces) {
    const int64_t a = q.lo - s.offset[q.param], e = q.hi - s.offset[q.param];
    auto take = [&](size_t kind, const Tensor& into) {
      into.slice(q.local, q.local + (q.hi - q.lo))
          .copy_from(flat_view(*source[per_param * q.param + kind]).slice(a, e));
    };
    take(0, s.m);
    take(1, s.v);
    if (s.master.defined()) take(2, s.master);
  }
  s.step_count = step_count;
}

}  // namespace rlaif
