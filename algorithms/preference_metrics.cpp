#include "algorithms/preference_metrics.h"

namespace rlaif {

void PreferenceMetricSums::add_pair(double pair_loss, double chosen_reward, double rejected_reward,
                                    double logp_chosen, double logp_rejected) {
  loss += pair_loss;
  chosen += chosen_reward;
  rejected += rejected_reward;
  accuracies += chosen_reward > rejected_reward;
  margins += chosen_reward - rejected_reward;
  logps_chosen += logp_chosen;
  logps_rejected += logp_rejected;
}

Metrics PreferenceMetricSums::means(const std::string& prefix) const {
  const double n = pairs > 0 ? static_cast<double>(pairs) : 1.0;
  Metrics out = {{prefix + "rewards/chosen", chosen / n},
                 {prefix + "rewards/rejected", rejected / n},
                 {prefix + "rewards/accuracies", accuracies / n},
                 {prefix + "rewards/margins", margins / n},
                 {prefix + "logps/chosen", logps_chosen / n},
                 {prefix + "logps/rejected", logps_rejected / n}};
  if (has_nll) out.emplace_back(prefix + "nll_loss", nll / n);
  for (const auto& [name, sum] : extra) out.emplace_back(prefix + name, sum / n);
  return out;
}

std::vector<int64_t> micro_batch_indices(const PairOrder& order, int64_t step, int64_t micro,
                                         int64_t grad_accum, int64_t batch, int rank, int ranks) {
  return rank_shard(order.batch(step * grad_accum + micro, batch), rank, ranks);
}

}  // namespace rlaif
