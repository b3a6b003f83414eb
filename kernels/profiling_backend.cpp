#include "kernels/profiling_backend.h"

#include <algorithm>
#include <utility>

namespace rlaif {
namespace {

// What one call adds to its label's aggregate. Built only after the inner call returned, so the
// shapes it reads have passed the backend's argument checks.
struct Sample {
  std::string label;
  double flops = 0.0;
  double bytes = 0.0;
};

// "8x1024x768"; "scalar" for a 0-d tensor.
std::string dims(const Tensor& t) {
  if (t.dim() == 0) return "scalar";
  std::string s;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (d) s += 'x';
    s += std::to_string(t.shape()[static_cast<size_t>(d)]);
  }
  return s;
}

// "name 8x1024x768 bf16": the signature of most primitives, keyed by their main tensor.
std::string sig(const std::string& name, const Tensor& t) {
  return name + " " + dims(t) + " " + dtype_name(t.dtype());
}

// Bytes of the tensors a call touches, each counted once (absent tensors count 0): a cheap
// lower bound on its memory traffic, enough to tell a memory-bound primitive from a slow one.
template <typename... Ts>
double bytes_of(const Ts&... ts) {
  return (0.0 + ... + (ts.defined() ? static_cast<double>(ts.nbytes()) : 0.0));
}

Sample simple(const std::string& name, const Tensor& key, double bytes) {
  return {sig(name, key), 0.0, bytes};
}

// Query/key pairs a causal attention evaluates per (batch, head): query i sits at key position
// kv_len - Tq + i and sees keys 0..that position. Segments and sliding windows are ignored (an
// upper bound).
double causal_pairs(int64_t tq, int64_t kv_len) {
  const double q = static_cast<double>(tq), l = static_cast<double>(kv_len);
  if (kv_len >= tq) return q * (l - q) + q * (q + 1.0) / 2.0;
  return l * (l + 1.0) / 2.0;
}

// "attention B8 T1024 H12 Dh64 bf16", plus the key length (the cache capacity, not kv_len, so
// decoding steps share one label), kv heads and segments where they differ from the plain case.
// flops_per_pair: 4·Dh forward (q·k and p·v), 10·Dh backward (FlashAttention-2's count: scores
// recomputed, then dv, dp, dq, dk).
Sample attention_sample(const char* name, const Tensor& q, const Tensor& k,
                        const Tensor& segment_ids, int64_t kv_len, double flops_per_dh,
                        double bytes) {
  const int64_t B = q.size(0), tq = q.size(1), hq = q.size(2), dh = q.size(3);
  const int64_t tk = k.size(1), hkv = k.size(2);
  std::string label = std::string(name) + " B" + std::to_string(B) + " T" + std::to_string(tq) +
                      " H" + std::to_string(hq) + " Dh" + std::to_string(dh) + " " +
                      dtype_name(q.dtype());
  if (tk != tq) label += " Tk" + std::to_string(tk);
  if (hkv != hq) label += " Hkv" + std::to_string(hkv);
  if (segment_ids.defined()) label += " seg";
  const int64_t valid = kv_len < 0 ? tk : kv_len;
  const double flops = flops_per_dh * static_cast<double>(dh) * static_cast<double>(B) *
                       static_cast<double>(hq) * causal_pairs(tq, valid);
  return {std::move(label), flops, bytes};
}

}  // namespace

ProfilingBackend::ProfilingBackend(Backend& inner) : inner_(inner) {}

void ProfilingBackend::enable() {
  // The floor: an empty interval between two marks, timed as a primitive is (median of a few).
  inner_.synchronize();
  std::vector<double> s;
  for (int i = 0; i < 9; ++i) {
    const std::unique_ptr<QueueMark> start = inner_.mark();
    const std::unique_ptr<QueueMark> stop = inner_.mark();
    s.push_back(stop->seconds_since(*start));
  }
  std::sort(s.begin(), s.end());
  mark_floor_s_ = s[s.size() / 2];
  enabled_.store(true, std::memory_order_relaxed);
}

void ProfilingBackend::disable() {
  enabled_.store(false, std::memory_order_relaxed);
}

void ProfilingBackend::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  pending_.clear();
  stats_.clear();
}

void ProfilingBackend::resolve_pending() const {
  for (PendingCall& p : pending_) {
    const double seconds = p.stop->seconds_since(*p.start);
    ProfileEntry& e = stats_[p.label];
    if (e.calls == 0) e.name = p.label;
    e.calls += 1;
    e.seconds += seconds;
    e.flops += p.flops;
    e.bytes += p.bytes;
  }
  pending_.clear();
}

std::vector<ProfileEntry> ProfilingBackend::entries() const {
  std::vector<ProfileEntry> out;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    resolve_pending();
    out.reserve(stats_.size());
    for (const auto& [label, e] : stats_) out.push_back(e);
  }
  // stats_ is ordered by name, and stable_sort keeps that order among equal times.
  std::stable_sort(out.begin(), out.end(), [](const ProfileEntry& a, const ProfileEntry& b) {
    return a.seconds > b.seconds;
  });
  return out;
}

double ProfilingBackend::total_seconds() const {
  std::lock_guard<std::mutex> lock(mutex_);
  resolve_pending();
  double total = 0.0;
  for (const auto& [label, e] : stats_) total += e.seconds;
  return total;
}

template <typename Describe, typename Call>
void ProfilingBackend::timed(Describe&& describe, Call&& call) {
  if (!enabled()) {
    call();
    return;
  }
  std::unique_ptr<QueueMark> start = inner_.mark();
  call();
  std::unique_ptr<QueueMark> stop = inner_.mark();
  Sample s = describe();
  std::lock_guard<std::mutex> lock(mutex_);
  pending_.push_back({std::move(s.label), s.flops, s.bytes, std::move(start), std::move(stop)});
  if (pending_.size() >= kMaxPending) resolve_pending();
}

// ---- Forwarding ------------------------------------------------------------------------------

void ProfilingBackend::fill(const Tensor& out, double value) {
  timed([&] { return simple("fill", out, bytes_of(out)); }, [&] { inner_.fill(out, value); });
}

void ProfilingBackend::copy(const Tensor& src, const Tensor& dst) {
  timed([&] { return simple("copy", dst, bytes_of(src, dst)); }, [&] { inner_.copy(src, dst); });
}

void ProfilingBackend::cast(const Tensor& src, const Tensor& dst) {
  timed(
      [&] {
        return Sample{
            "cast " + dims(src) + " " + dtype_name(src.dtype()) + "->" + dtype_name(dst.dtype()),
            0.0, bytes_of(src, dst)};
      },
      [&] { inner_.cast(src, dst); });
}

void ProfilingBackend::random_uniform(const Tensor& out, uint64_t seed, uint64_t offset, float lo,
                                      float hi) {
  timed([&] { return simple("random_uniform", out, bytes_of(out)); },
        [&] { inner_.random_uniform(out, seed, offset, lo, hi); });
}

void ProfilingBackend::random_normal(const Tensor& out, uint64_t seed, uint64_t offset, float mean,
                                     float std) {
  timed([&] { return simple("random_normal", out, bytes_of(out)); },
        [&] { inner_.random_normal(out, seed, offset, mean, std); });
}

void ProfilingBackend::concat(const std::vector<Tensor>& inputs, const Tensor& out) {
  timed(
      [&] {
        return simple("concat " + std::to_string(inputs.size()) + " ->", out, 2.0 * bytes_of(out));
      },
      [&] { inner_.concat(inputs, out); });
}

void ProfilingBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out, bool trans_a,
                              bool trans_b, const Tensor& bias, float alpha, float beta) {
  timed(
      [&] {
        // "matmul [B12 ]MxNxK dtype nt[ +bias][ acc]": M, N from out, K from a.
        const int64_t M = out.size(out.dim() - 2), N = out.size(out.dim() - 1);
        const int64_t K = trans_a ? a.size(a.dim() - 2) : a.size(a.dim() - 1);
        const int64_t batch = M * N > 0 ? out.numel() / (M * N) : 1;
        std::string label = "matmul ";
        if (out.dim() > 2) label += "B" + std::to_string(batch) + " ";
        label += std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + " " +
                 dtype_name(a.dtype()) + " " + (trans_a ? "t" : "n") + (trans_b ? "t" : "n");
        if (bias.defined()) label += " +bias";
        if (beta != 0.0f) label += " acc";
        const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) *
                             static_cast<double>(K) * static_cast<double>(batch);
        return Sample{std::move(label), flops, bytes_of(a, b, out, bias)};
      },
      [&] { inner_.matmul(a, b, out, trans_a, trans_b, bias, alpha, beta); });
}

void ProfilingBackend::linear_gelu(const Tensor& x, const Tensor& w, const Tensor& bias,
                                   const Tensor& pre, const Tensor& out) {
  timed(
      [&] {
        // "linear_gelu MxNxK dtype[ +bias]", as matmul's label for x @ wᵀ.
        const bool flat = x.dim() == 2 && w.dim() == 2;  // else the backend's own check throws
        const int64_t M = flat ? x.size(0) : 0, N = flat ? w.size(0) : 0, K = flat ? x.size(1) : 0;
        std::string label = "linear_gelu " + std::to_string(M) + "x" + std::to_string(N) + "x" +
                            std::to_string(K) + " " + dtype_name(x.dtype());
        if (bias.defined()) label += " +bias";
        const double flops =
            2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
        return Sample{std::move(label), flops, bytes_of(x, w, pre, bias) + bytes_of(out)};
      },
      [&] { inner_.linear_gelu(x, w, bias, pre, out); });
}

void ProfilingBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out) {
  timed([&] { return simple(std::string("unary ") + unary_op_name(op), x, bytes_of(x, out)); },
        [&] { inner_.unary(op, x, out); });
}

void ProfilingBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y,
                                      const Tensor& dy, const Tensor& dx) {
  timed(
      [&] {
        return simple(std::string("unary_backward ") + unary_op_name(op), x,
                      bytes_of(x, y, dy, dx));
      },
      [&] { inner_.unary_backward(op, x, y, dy, dx); });
}

void ProfilingBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  timed(
      [&] {
        // A broadcast b (a bias, a gain, a scalar) is a different kernel shape: say so.
        std::string label = std::string("binary ") + binary_op_name(op) + " " + dims(a);
        if (b.shape() != a.shape()) label += " by " + dims(b);
        return Sample{label + " " + dtype_name(a.dtype()), 0.0, bytes_of(a, b, out)};
      },
      [&] { inner_.binary(op, a, b, out); });
}

void ProfilingBackend::binary_backward(BinaryOp op, const Tensor& a, const Tensor& b,
                                       const Tensor& dout, const Tensor& da, const Tensor& db) {
  timed(
      [&] {
        std::string label = std::string("binary_backward ") + binary_op_name(op) + " " + dims(a);
        if (b.shape() != a.shape()) label += " by " + dims(b);
        return Sample{label + " " + dtype_name(a.dtype()), 0.0, bytes_of(a, b, dout, da, db)};
      },
      [&] { inner_.binary_backward(op, a, b, dout, da, db); });
}

void ProfilingBackend::affine(const Tensor& x, float alpha, float beta, const Tensor& out) {
  timed([&] { return simple("affine", x, bytes_of(x, out)); },
        [&] { inner_.affine(x, alpha, beta, out); });
}

void ProfilingBackend::clamp(const Tensor& x, float lo, float hi, const Tensor& out) {
  timed([&] { return simple("clamp", x, bytes_of(x, out)); },
        [&] { inner_.clamp(x, lo, hi, out); });
}

void ProfilingBackend::clamp_backward(const Tensor& x, float lo, float hi, const Tensor& dy,
                                      const Tensor& dx) {
  timed([&] { return simple("clamp_backward", x, bytes_of(x, dy, dx)); },
        [&] { inner_.clamp_backward(x, lo, hi, dy, dx); });
}

void ProfilingBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b,
                             const Tensor& out) {
  timed([&] { return simple("where", a, bytes_of(cond, a, b, out)); },
        [&] { inner_.where(cond, a, b, out); });
}

void ProfilingBackend::reduce(ReduceOp op, const Tensor& x, int dim, const Tensor& out) {
  timed(
      [&] {
        return simple(std::string("reduce ") + reduce_op_name(op) + " dim " + std::to_string(dim),
                      x, bytes_of(x, out));
      },
      [&] { inner_.reduce(op, x, dim, out); });
}

void ProfilingBackend::reduce_backward(ReduceOp op, const Tensor& x, const Tensor& y,
                                       const Tensor& dy, int dim, const Tensor& dx) {
  timed(
      [&] {
        return simple(
            std::string("reduce_backward ") + reduce_op_name(op) + " dim " + std::to_string(dim), x,
            bytes_of(x, y, dy, dx));
      },
      [&] { inner_.reduce_backward(op, x, y, dy, dim, dx); });
}

void ProfilingBackend::argmax(const Tensor& x, const Tensor& out) {
  timed([&] { return simple("argmax", x, bytes_of(x, out)); }, [&] { inner_.argmax(x, out); });
}

void ProfilingBackend::masked_reduce(const Tensor& x, const Tensor& mask, bool mean,
                                     const Tensor& out) {
  timed(
      [&] {
        return simple(mean ? "masked_reduce mean" : "masked_reduce sum", x, bytes_of(x, mask, out));
      },
      [&] { inner_.masked_reduce(x, mask, mean, out); });
}

void ProfilingBackend::masked_reduce_backward(const Tensor& mask, const Tensor& dy, bool mean,
                                              const Tensor& dx) {
  timed(
      [&] {
        return simple(mean ? "masked_reduce_backward mean" : "masked_reduce_backward sum", dx,
                      bytes_of(mask, dy, dx));
      },
      [&] { inner_.masked_reduce_backward(mask, dy, mean, dx); });
}

void ProfilingBackend::softmax(const Tensor& x, const Tensor& out) {
  timed([&] { return simple("softmax", x, bytes_of(x, out)); }, [&] { inner_.softmax(x, out); });
}

void ProfilingBackend::log_softmax(const Tensor& x, const Tensor& out) {
  timed([&] { return simple("log_softmax", x, bytes_of(x, out)); },
        [&] { inner_.log_softmax(x, out); });
}

void ProfilingBackend::softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  timed([&] { return simple("softmax_backward", y, bytes_of(y, dy, dx)); },
        [&] { inner_.softmax_backward(y, dy, dx); });
}

void ProfilingBackend::log_softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  timed([&] { return simple("log_softmax_backward", y, bytes_of(y, dy, dx)); },
        [&] { inner_.log_softmax_backward(y, dy, dx); });
}

void ProfilingBackend::embedding(const Tensor& weight, const Tensor& ids, const Tensor& out) {
  // Only the gathered rows are read, so they (out's size) count, not the whole table.
  timed([&] { return simple("embedding " + dims(weight) + " ids", ids, bytes_of(ids, out, out)); },
        [&] { inner_.embedding(weight, ids, out); });
}

void ProfilingBackend::embedding_backward(const Tensor& ids, const Tensor& dout,
                                          const Tensor& dweight, bool accumulate) {
  timed(
      [&] {
        // Accumulating touches only the rows the ids point at: read and written, as dout's size.
        return accumulate ? simple("embedding_backward += " + dims(dweight) + " ids", ids,
                                   bytes_of(ids, dout, dout, dout))
                          : simple("embedding_backward " + dims(dweight) + " ids", ids,
                                   bytes_of(ids, dout, dweight));
      },
      [&] { inner_.embedding_backward(ids, dout, dweight, accumulate); });
}

void ProfilingBackend::layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                 float eps, const Tensor& out, const Tensor& mean,
                                 const Tensor& rstd) {
  timed([&] { return simple("layernorm", x, bytes_of(x, gamma, beta, out, mean, rstd)); },
        [&] { inner_.layernorm(x, gamma, beta, eps, out, mean, rstd); });
}

void ProfilingBackend::layernorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                          const Tensor& rstd, const Tensor& dout, const Tensor& dx,
                                          const Tensor& dgamma, const Tensor& dbeta,
                                          bool accumulate_dx) {
  // An accumulating call reads dx as well: its own label, and dx counted twice.
  timed(
      [&] {
        return simple(accumulate_dx ? "layernorm_backward +=" : "layernorm_backward", x,
                      bytes_of(x, gamma, mean, rstd, dout, dx, dgamma, dbeta) +
                          (accumulate_dx ? bytes_of(dx) : 0.0));
      },
      [&] {
        inner_.layernorm_backward(x, gamma, mean, rstd, dout, dx, dgamma, dbeta, accumulate_dx);
      });
}

void ProfilingBackend::rmsnorm(const Tensor& x, const Tensor& gamma, float eps, const Tensor& out,
                               const Tensor& rstd) {
  timed([&] { return simple("rmsnorm", x, bytes_of(x, gamma, out, rstd)); },
        [&] { inner_.rmsnorm(x, gamma, eps, out, rstd); });
}

void ProfilingBackend::rmsnorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& rstd,
                                        const Tensor& dout, const Tensor& dx, const Tensor& dgamma,
                                        bool accumulate_dx) {
  timed(
      [&] {
        return simple(
            accumulate_dx ? "rmsnorm_backward +=" : "rmsnorm_backward", x,
            bytes_of(x, gamma, rstd, dout, dx, dgamma) + (accumulate_dx ? bytes_of(dx) : 0.0));
      },
      [&] { inner_.rmsnorm_backward(x, gamma, rstd, dout, dx, dgamma, accumulate_dx); });
}

void ProfilingBackend::add_layernorm(const Tensor& x, const Tensor& residual, const Tensor& gamma,
                                     const Tensor& beta, float eps, const Tensor& sum,
                                     const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  timed(
      [&] {
        return simple("add_layernorm", x, bytes_of(x, residual, gamma, beta, sum, out, mean, rstd));
      },
      [&] { inner_.add_layernorm(x, residual, gamma, beta, eps, sum, out, mean, rstd); });
}

void ProfilingBackend::add_rmsnorm(const Tensor& x, const Tensor& residual, const Tensor& gamma,
                                   float eps, const Tensor& sum, const Tensor& out,
                                   const Tensor& rstd) {
  timed([&] { return simple("add_rmsnorm", x, bytes_of(x, residual, gamma, sum, out, rstd)); },
        [&] { inner_.add_rmsnorm(x, residual, gamma, eps, sum, out, rstd); });
}

void ProfilingBackend::swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) {
  timed([&] { return simple("swiglu", gate, bytes_of(gate, up, out)); },
        [&] { inner_.swiglu(gate, up, out); });
}

void ProfilingBackend::swiglu_backward(const Tensor& gate, const Tensor& up, const Tensor& dout,
                                       const Tensor& dgate, const Tensor& dup) {
  timed([&] { return simple("swiglu_backward", gate, bytes_of(gate, up, dout, dgate, dup)); },
        [&] { inner_.swiglu_backward(gate, up, dout, dgate, dup); });
}

void ProfilingBackend::rope(const Tensor& x, const Tensor& positions, float theta, bool inverse,
                            const Tensor& out) {
  timed([&] { return simple(inverse ? "rope inverse" : "rope", x, bytes_of(x, positions, out)); },
        [&] { inner_.rope(x, positions, theta, inverse, out); });
}

void ProfilingBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& segment_ids, int64_t kv_len, int64_t window,
                                 float scale, const Tensor& out, const Tensor& lse) {
  timed(
      [&] {
        return attention_sample("attention", q, k, segment_ids, kv_len, 4.0,
                                bytes_of(q, k, v, segment_ids, out, lse));
      },
      [&] { inner_.attention(q, k, v, segment_ids, kv_len, window, scale, out, lse); });
}

void ProfilingBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                          const Tensor& segment_ids, int64_t kv_len, int64_t window,
                                          float scale, const Tensor& out, const Tensor& lse,
                                          const Tensor& dout, const Tensor& dq, const Tensor& dk,
                                          const Tensor& dv) {
  timed(
      [&] {
        return attention_sample("attention_backward", q, k, segment_ids, kv_len, 10.0,
                                bytes_of(q, k, v, segment_ids, out, lse, dout, dq, dk, dv));
      },
      [&] {
        inner_.attention_backward(q, k, v, segment_ids, kv_len, window, scale, out, lse, dout, dq,
                                  dk, dv);
      });
}

void ProfilingBackend::adamw_step(const Tensor& param, const Tensor& grad, const Tensor& m,
                                  const Tensor& v, const Tensor& master, const AdamWHyper& h) {
  // param, m, v and master are read and written; grad is read.
  timed(
      [&] {
        return simple(master.defined() ? "adamw_step master" : "adamw_step", param,
                      bytes_of(grad) + 2.0 * bytes_of(param, m, v, master));
      },
      [&] { inner_.adamw_step(param, grad, m, v, master, h); });
}

void ProfilingBackend::squared_norm(const Tensor& x, const Tensor& out) {
  timed([&] { return simple("squared_norm", x, bytes_of(x)); },
        [&] { inner_.squared_norm(x, out); });
}

void ProfilingBackend::adamw_steps(std::span<const AdamWTensors> params, const AdamWHyper& h,
                                   float grad_scale) {
  // "adamw_steps 196 tensors 124439808 elements bf16 master": the first entry's layout.
  timed(
      [&] {
        int64_t elements = 0;
        double bytes = 0.0;
        for (const AdamWTensors& e : params) {
          elements += e.param.numel();
          bytes += bytes_of(e.grad) + 2.0 * bytes_of(e.param, e.m, e.v, e.master);
        }
        std::string label = "adamw_steps " + std::to_string(params.size()) + " tensors " +
                            std::to_string(elements) + " elements";
        if (!params.empty()) {
          label += std::string(" ") + dtype_name(params[0].param.dtype()) +
                   (params[0].master.defined() ? " master" : "");
        }
        return Sample{std::move(label), 0.0, bytes};
      },
      [&] { inner_.adamw_steps(params, h, grad_scale); });
}

void ProfilingBackend::squared_norms(std::span<const Tensor> xs, const Tensor& out) {
  timed(
      [&] {
        int64_t elements = 0;
        double bytes = 0.0;
        for (const Tensor& x : xs) {
          elements += x.numel();
          bytes += bytes_of(x);
        }
        return Sample{"squared_norms " + std::to_string(xs.size()) + " tensors " +
                          std::to_string(elements) + " elements",
                      0.0, bytes};
      },
      [&] { inner_.squared_norms(xs, out); });
}

void ProfilingBackend::cross_entropy(const Tensor& logits, const Tensor& targets, int ignore_index,
                                     const Tensor& losses, const Tensor& lse) {
  timed([&] { return simple("cross_entropy", logits, bytes_of(logits, targets, losses, lse)); },
        [&] { inner_.cross_entropy(logits, targets, ignore_index, losses, lse); });
}

void ProfilingBackend::cross_entropy_backward(const Tensor& logits, const Tensor& targets,
                                              const Tensor& lse, const Tensor& dlosses,
                                              int ignore_index, const Tensor& dlogits) {
  timed(
      [&] {
        return simple("cross_entropy_backward", logits,
                      bytes_of(logits, targets, lse, dlosses, dlogits));
      },
      [&] { inner_.cross_entropy_backward(logits, targets, lse, dlosses, ignore_index, dlogits); });
}

void ProfilingBackend::gather_logprobs(const Tensor& logits, const Tensor& targets,
                                       const Tensor& logp, const Tensor& lse) {
  timed([&] { return simple("gather_logprobs", logits, bytes_of(logits, targets, logp, lse)); },
        [&] { inner_.gather_logprobs(logits, targets, logp, lse); });
}

void ProfilingBackend::gather_logprobs_backward(const Tensor& logits, const Tensor& targets,
                                                const Tensor& lse, const Tensor& dlogp,
                                                const Tensor& dlogits) {
  timed(
      [&] {
        return simple("gather_logprobs_backward", logits,
                      bytes_of(logits, targets, lse, dlogp, dlogits));
      },
      [&] { inner_.gather_logprobs_backward(logits, targets, lse, dlogp, dlogits); });
}

void ProfilingBackend::sample_tokens(const Tensor& logits, const Tensor& uniforms,
                                     float temperature, int64_t top_k, float top_p,
                                     const Tensor& out) {
  timed([&] { return simple("sample_tokens", logits, bytes_of(logits, uniforms, out)); },
        [&] { inner_.sample_tokens(logits, uniforms, temperature, top_k, top_p, out); });
}

}  // namespace rlaif
