#include "model/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "runtime/error.h"
#include "runtime/philox.h"

namespace rlaif {

float sampling_uniform(uint64_t seed, uint64_t stream, uint64_t step) {
  // 2^32 steps per stream: streams never overlap for any realistic generation length.
  return philox_uniform(seed, (stream << 32) + step);
}

int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& options, float u) {
  RLAIF_CHECK(vocab > 0, "sample_token: empty vocabulary");
  for (int64_t v = 0; v < vocab; ++v) {
    RLAIF_CHECK(std::isfinite(logits[v]) || logits[v] == -INFINITY, "sample_token: logit of token ",
                v, " is ", logits[v]);
  }
  if (options.temperature <= 0.0f) {
    return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  }
  RLAIF_CHECK(options.top_p > 0.0f && options.top_p <= 1.0f, "sample_token: top_p ", options.top_p,
              " must be in (0, 1]");
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int64_t keep = vocab;
  if (options.top_k > 0) keep = std::min(keep, options.top_k);
  // Softmax at temperature T over the candidates, in double, max-subtracted.
  const double inv_t = 1.0 / options.temperature;
  const double top = logits[order[0]];
  std::vector<double> prob(static_cast<size_t>(keep));
  double total = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    prob[static_cast<size_t>(i)] = std::exp((logits[order[static_cast<size_t>(i)]] - top) * inv_t);
    total += prob[static_cast<size_t>(i)];
  }
  if (options.top_p < 1.0f) {
    // Smallest prefix whose probability reaches top_p (at least one token).
    double cumulative = 0.0;
    int64_t cut = keep;
    for (int64_t i = 0; i < keep; ++i) {
      cumulative += prob[static_cast<size_t>(i)] / total;
      if (cumulative >= options.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    total = std::accumulate(prob.begin(), prob.begin() + keep, 0.0);
  }
  double target = static_cast<double>(u) * total, cumulative = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    cumulative += prob[static_cast<size_t>(i)];
    if (cumulative > target) return order[static_cast<size_t>(i)];
  }
  return order[static_cast<size_t>(keep - 1)];
}

}  // namespace rlaif
