// Losses over a vocabulary: softmax cross-entropy and gathered log-probabilities, forward and
// backward.
//
// Both reduce a row of logits x (V values) to its log-sum-exp, computed stably by subtracting the
// row maximum m before exponentiating:
//   lse = m + log Σ_v exp(x_v - m)
// so no exponential overflows, and the largest term is exactly exp(0) = 1 (no underflow of the
// whole sum). Then
//   cross-entropy:   loss = lse - x_t          dx_v = dloss·(softmax_v - [v = t])
//   log-probability: logp = x_t - lse          dx_v = dlogp·([v = t] - softmax_v)
// with softmax_v = exp(x_v - lse), recomputed in the backward pass from the saved lse.
// Rows are independent and run in parallel; each row's sums are sequential, in double.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_checks.h"

namespace rlaif {
namespace {

// Shapes of one loss call: n rows of v logits.
struct Rows {
  int64_t n;
  int64_t v;
};

Rows check_logits(const char* op, const char* arg, const Tensor& logits) {
  cpu::expect(op, arg, logits, DType::f32);
  return {cpu::rows(logits), cpu::last_dim(op, arg, logits)};
}

// A per-row tensor (targets, losses, lse, ...): shaped [N] or as logits without the last
// dimension (so [B, T, V] logits may come with [B, T] targets).
void check_per_row(const char* op, const char* arg, const Tensor& t, DType dtype,
                   const Tensor& logits, int64_t n) {
  cpu::expect(op, arg, t, dtype);
  Shape leading(logits.shape().begin(), logits.shape().end() - 1);
  RLAIF_CHECK(t.shape() == Shape{n} || t.shape() == leading, op, ": ", arg, " is ", t,
              " but must have shape ", shape_str({n}), " (one value per row of logits ", logits,
              ")");
}

// Every target in [0, V) or equal to ignore_index (pass allow_ignore = false when there is none).
// Checked before any parallel work: an exception must not escape an OpenMP region.
void check_targets(const char* op, const Tensor& targets, int64_t vocab, bool allow_ignore,
                   int ignore_index) {
  const int32_t* t = targets.data<int32_t>();
  for (int64_t n = 0; n < targets.numel(); ++n) {
    if (allow_ignore && t[n] == ignore_index) continue;
    RLAIF_CHECK(t[n] >= 0 && t[n] < vocab, op, ": targets[", n, "] = ", t[n],
                " is outside the vocabulary [0, ", vocab, ")",
                allow_ignore ? Error::concat(" and is not ignore_index (", ignore_index, ")")
                             : std::string());
  }
}

// log Σ_v exp(x_v), max-subtracted; -inf for an empty row or one that is all -inf.
double log_sum_exp(const float* x, int64_t v) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < v; ++j) m = std::max(m, static_cast<double>(x[j]));
  if (m == -std::numeric_limits<double>::infinity()) return m;
  double sum = 0.0;
  for (int64_t j = 0; j < v; ++j) sum += std::exp(x[j] - m);
  return m + std::log(sum);
}

// dx_v = coef·(softmax_v - [v = target]) for one row, with softmax_v = exp(x_v - lse).
// (gather_logprobs_backward passes coef = -dlogp.) Each element is read before it is written, so
// dx may alias x.
void softmax_minus_onehot(const float* x, int64_t v, double lse, int64_t target, double coef,
                          float* dx) {
  for (int64_t j = 0; j < v; ++j) {
    const double p = std::exp(x[j] - lse);
    dx[j] = static_cast<float>(coef * (p - (j == target ? 1.0 : 0.0)));
  }
}

}  // namespace

void CpuBackend::cross_entropy(const Tensor& logits, const Tensor& targets, int ignore_index,
                               const Tensor& losses, const Tensor& lse) {
  const char* op = "cross_entropy";
  const Rows r = check_logits(op, "logits", logits);
  check_per_row(op, "targets", targets, DType::i32, logits, r.n);
  check_per_row(op, "losses", losses, DType::f32, logits, r.n);
  check_per_row(op, "lse", lse, DType::f32, logits, r.n);
  check_targets(op, targets, r.v, /*allow_ignore=*/true, ignore_index);

  const float* x = logits.data<float>();
  const int32_t* t = targets.data<int32_t>();
  float* loss = losses.data<float>();
  float* lse_out = lse.data<float>();
  cpu::parallel_for(r.n, 3 * r.v, [&](int64_t n) {
    const float* row = x + n * r.v;
    const double l = log_sum_exp(row, r.v);
    lse_out[n] = static_cast<float>(l);
    loss[n] = t[n] == ignore_index ? 0.0f : static_cast<float>(l - row[t[n]]);
  });
}

void CpuBackend::cross_entropy_backward(const Tensor& logits, const Tensor& targets,
                                        const Tensor& lse, const Tensor& dlosses, int ignore_index,
                                        const Tensor& dlogits) {
  const char* op = "cross_entropy_backward";
  const Rows r = check_logits(op, "logits", logits);
  check_per_row(op, "targets", targets, DType::i32, logits, r.n);
  check_per_row(op, "lse", lse, DType::f32, logits, r.n);
  check_per_row(op, "dlosses", dlosses, DType::f32, logits, r.n);
  cpu::expect(op, "dlogits", dlogits, DType::f32, logits.shape());
  check_targets(op, targets, r.v, /*allow_ignore=*/true, ignore_index);

  const float* x = logits.data<float>();
  const int32_t* t = targets.data<int32_t>();
  const float* l = lse.data<float>();
  const float* dl = dlosses.data<float>();
  float* dx = dlogits.data<float>();
  cpu::parallel_for(r.n, 2 * r.v, [&](int64_t n) {
    float* drow = dx + n * r.v;
    if (t[n] == ignore_index) {  // an ignored row contributed nothing to the loss
      for (int64_t j = 0; j < r.v; ++j) drow[j] = 0.0f;
      return;
    }
    softmax_minus_onehot(x + n * r.v, r.v, l[n], t[n], dl[n], drow);
  });
}

void CpuBackend::gather_logprobs(const Tensor& logits, const Tensor& targets, const Tensor& logp,
                                 const Tensor& lse) {
  const char* op = "gather_logprobs";
  const Rows r = check_logits(op, "logits", logits);
  check_per_row(op, "targets", targets, DType::i32, logits, r.n);
  check_per_row(op, "logp", logp, DType::f32, logits, r.n);
  check_per_row(op, "lse", lse, DType::f32, logits, r.n);
  check_targets(op, targets, r.v, /*allow_ignore=*/false, 0);

  const float* x = logits.data<float>();
  const int32_t* t = targets.data<int32_t>();
  float* lp = logp.data<float>();
  float* lse_out = lse.data<float>();
  cpu::parallel_for(r.n, 3 * r.v, [&](int64_t n) {
    const float* row = x + n * r.v;
    const double l = log_sum_exp(row, r.v);
    lse_out[n] = static_cast<float>(l);
    lp[n] = static_cast<float>(row[t[n]] - l);
  });
}

void CpuBackend::gather_logprobs_backward(const Tensor& logits, const Tensor& targets,
                                          const Tensor& lse, const Tensor& dlogp,
                                          const Tensor& dlogits) {
  const char* op = "gather_logprobs_backward";
  const Rows r = check_logits(op, "logits", logits);
  check_per_row(op, "targets", targets, DType::i32, logits, r.n);
  check_per_row(op, "lse", lse, DType::f32, logits, r.n);
  check_per_row(op, "dlogp", dlogp, DType::f32, logits, r.n);
  cpu::expect(op, "dlogits", dlogits, DType::f32, logits.shape());
  check_targets(op, targets, r.v, /*allow_ignore=*/false, 0);

  const float* x = logits.data<float>();
  const int32_t* t = targets.data<int32_t>();
  const float* l = lse.data<float>();
  const float* dlp = dlogp.data<float>();
  float* dx = dlogits.data<float>();
  // dlogp·([v = t] - softmax_v) = (-dlogp)·(softmax_v - [v = t]).
  cpu::parallel_for(r.n, 2 * r.v, [&](int64_t n) {
    softmax_minus_onehot(x + n * r.v, r.v, l[n], t[n], -static_cast<double>(dlp[n]), dx + n * r.v);
  });
}

}  // namespace rlaif
