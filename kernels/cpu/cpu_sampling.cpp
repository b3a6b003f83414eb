// Choosing the next token from rows of logits: greedy, temperature, top-k and top-p (nucleus,
// Holtzman et al., 2020). This is the one implementation of the rules on the host: model/
// sampling.cpp's sample_token calls it on a single row, and the conformance suite holds every
// other backend to it.
//
// It follows backend.h's description literally, because a reference should be easy to check by
// reading: the candidates are sorted (descending logit, ascending id: a total order, so a plain
// sort gives the same order as a stable one, and a partial sort the same first top_k), their
// probabilities computed in double, max-subtracted, and summed in that order. Rows are
// independent and run in parallel; every bad value is reported before any parallel work (an
// exception must not escape an OpenMP region).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_checks.h"

namespace rlaif {
namespace {

constexpr const char* kOp = "sample_tokens";

// Row `logits` (vocab values, all finite or -inf, at least one finite) sampled with draw u in
// [0, 1); temperature > 0.
int32_t sample_row(const float* logits, int64_t vocab, float temperature, int64_t top_k,
                   float top_p, float u) {
  int64_t keep = vocab;
  if (top_k > 0) keep = std::min(keep, top_k);
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  auto before = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  if (keep < vocab) {
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), before);
  } else {
    std::sort(order.begin(), order.end(), before);
  }
  // Softmax at temperature T over the candidates, in double, max-subtracted (so the first
  // candidate has p = 1 exactly, and total ≥ 1).
  const double inv_t = 1.0 / temperature;
  const double top = logits[order[0]];
  std::vector<double> prob(static_cast<size_t>(keep));
  double total = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    prob[static_cast<size_t>(i)] = std::exp((logits[order[static_cast<size_t>(i)]] - top) * inv_t);
    total += prob[static_cast<size_t>(i)];
  }
  if (top_p < 1.0f) {
    // Smallest prefix whose probability reaches top_p (at least one token).
    double cumulative = 0.0;
    int64_t cut = keep;
    for (int64_t i = 0; i < keep; ++i) {
      cumulative += prob[static_cast<size_t>(i)] / total;
      if (cumulative >= top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    total = std::accumulate(prob.begin(), prob.begin() + keep, 0.0);
  }
  // u < 1 and the cumulative sum reaches total exactly (same additions, same order), so some
  // candidate with p > 0 crosses the target; the last line is unreachable for valid input.
  const double target = static_cast<double>(u) * total;
  double cumulative = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    cumulative += prob[static_cast<size_t>(i)];
    if (cumulative > target) return order[static_cast<size_t>(i)];
  }
  return order[static_cast<size_t>(keep - 1)];
}

}  // namespace

void CpuBackend::sample_tokens(const Tensor& logits, const Tensor& uniforms, float temperature,
                               int64_t top_k, float top_p, const Tensor& out) {
  cpu::expect(kOp, "logits", logits, DType::f32);
  RLAIF_CHECK(logits.dim() == 2, kOp, ": logits is ", logits, " but must be [N, V]");
  const int64_t n = logits.size(0), vocab = logits.size(1);
  RLAIF_CHECK(vocab > 0, kOp, ": logits ", logits, " has an empty vocabulary");
  RLAIF_CHECK(vocab <= INT32_MAX, kOp, ": logits ", logits, " has more ids than i32 holds");
  cpu::expect(kOp, "uniforms", uniforms, DType::f32, {n});
  cpu::expect(kOp, "out", out, DType::i32, {n});
  const bool greedy = temperature <= 0.0f;  // false for NaN, which the next check rejects
  if (!greedy) {
    RLAIF_CHECK(std::isfinite(temperature), kOp, ": temperature ", temperature, " must be finite");
    RLAIF_CHECK(top_k >= 0, kOp, ": top_k ", top_k, " must not be negative (0 keeps all)");
    RLAIF_CHECK(top_p > 0.0f && top_p <= 1.0f, kOp, ": top_p ", top_p, " must be in (0, 1]");
  }
  const float* x = logits.data<float>();
  const float* u = uniforms.data<float>();
  for (int64_t r = 0; r < n; ++r) {
    const float* row = x + r * vocab;
    bool any_finite = false;
    for (int64_t v = 0; v < vocab; ++v) {
      RLAIF_CHECK(std::isfinite(row[v]) || row[v] == -INFINITY, kOp, ": logits[", r, ", ", v,
                  "] = ", row[v], " is not finite (only -inf is allowed)");
      any_finite = any_finite || row[v] != -INFINITY;
    }
    if (greedy) continue;
    RLAIF_CHECK(any_finite, kOp, ": row ", r, " of logits ", logits,
                " is all -inf: no token to sample");
    RLAIF_CHECK(u[r] >= 0.0f && u[r] < 1.0f, kOp, ": uniforms[", r, "] = ", u[r],
                " is outside [0, 1)");
  }
  int32_t* o = out.data<int32_t>();
  cpu::parallel_for(n, greedy ? vocab : 32 * vocab, [&](int64_t r) {
    const float* row = x + r * vocab;
    o[r] = greedy ? static_cast<int32_t>(std::max_element(row, row + vocab) - row)
                  : sample_row(row, vocab, temperature, top_k, top_p, u[r]);
  });
}

}  // namespace rlaif
