#include "algorithms/advantages.h"

#include <cmath>

#include "runtime/error.h"

namespace rlaif {

GaeResult gae(const std::vector<double>& rewards, const std::vector<double>& values, double gamma,
              double lambda) {
  RLAIF_CHECK(rewards.size() == values.size(), "gae: ", rewards.size(), " rewards but ",
              values.size(), " values");
  const size_t T = rewards.size();
  GaeResult out;
  out.advantages.assign(T, 0.0);
  out.returns.assign(T, 0.0);
  double next_advantage = 0.0;
  for (size_t i = T; i-- > 0;) {
    const double next_value = i + 1 < T ? values[i + 1] : 0.0;  // V_T = 0: the episode ends
    const double delta = rewards[i] + gamma * next_value - values[i];
    next_advantage = delta + gamma * lambda * next_advantage;
    out.advantages[i] = next_advantage;
    out.returns[i] = next_advantage + values[i];
  }
  return out;
}

std::vector<double> whiten(const std::vector<double>& x, const std::vector<double>& mask,
                           bool shift_mean) {
  RLAIF_CHECK(x.size() == mask.size(), "whiten: ", x.size(), " values but ", mask.size(),
              " mask entries");
  double n = 0.0, sum = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (mask[i] != 0.0) {
      n += 1.0;
      sum += x[i];
    }
  }
  if (n == 0.0) return x;
  const double mean = sum / n;
  double squares = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (mask[i] != 0.0) squares += (x[i] - mean) * (x[i] - mean);
  }
  // Bessel's correction as torch.var (TRL's masked_var); one entry has no spread: var = 0.
  const double var = n > 1.0 ? squares / (n - 1.0) : 0.0;
  const double inv_std = 1.0 / std::sqrt(var + 1e-8);
  std::vector<double> out = x;
  for (size_t i = 0; i < x.size(); ++i) {
    if (mask[i] == 0.0) continue;
    out[i] = (x[i] - mean) * inv_std + (shift_mean ? 0.0 : mean);
  }
  return out;
}

std::vector<double> whiten(const std::vector<double>& x, bool shift_mean) {
  return whiten(x, std::vector<double>(x.size(), 1.0), shift_mean);
}

namespace {

void check_groups(const char* what, size_t n, int64_t K) {
  RLAIF_CHECK(K >= 2, what, ": needs at least 2 samples per prompt (--samples-per-prompt), got ",
              K);
  RLAIF_CHECK(n % static_cast<size_t>(K) == 0, what, ": ", n, " scores are not a multiple of ", K,
              " samples per prompt");
}

}  // namespace

std::vector<double> rloo_advantages(const std::vector<double>& scores, int64_t K) {
  check_groups("rloo", scores.size(), K);
  const size_t k = static_cast<size_t>(K);
  std::vector<double> out(scores.size());
  for (size_t g = 0; g < scores.size(); g += k) {
    double total = 0.0;
    for (size_t i = g; i < g + k; ++i) total += scores[i];
    for (size_t i = g; i < g + k; ++i) {
      const double baseline = (total - scores[i]) / static_cast<double>(K - 1);
      out[i] = scores[i] - baseline;
    }
  }
  return out;
}

std::vector<double> grpo_advantages(const std::vector<double>& scores, int64_t K, double eps,
                                    bool scale_by_std) {
  check_groups("grpo", scores.size(), K);
  const size_t k = static_cast<size_t>(K);
  std::vector<double> out(scores.size());
  for (size_t g = 0; g < scores.size(); g += k) {
    double mean = 0.0;
    for (size_t i = g; i < g + k; ++i) mean += scores[i];
    mean /= static_cast<double>(K);
    double squares = 0.0;
    for (size_t i = g; i < g + k; ++i) squares += (scores[i] - mean) * (scores[i] - mean);
    const double std = std::sqrt(squares / static_cast<double>(K - 1));
    const double divisor = scale_by_std ? std + eps : 1.0;
    for (size_t i = g; i < g + k; ++i) out[i] = (scores[i] - mean) / divisor;
  }
  return out;
}

double zero_std_group_fraction(const std::vector<double>& scores, int64_t K) {
  check_groups("zero_std_group_fraction", scores.size(), K);
  const size_t k = static_cast<size_t>(K);
  size_t flat = 0;
  for (size_t g = 0; g < scores.size(); g += k) {
    bool equal = true;
    for (size_t i = g + 1; i < g + k; ++i) equal = equal && scores[i] == scores[g];
    flat += equal ? 1 : 0;
  }
  return static_cast<double>(flat) / static_cast<double>(scores.size() / k);
}

}  // namespace rlaif
