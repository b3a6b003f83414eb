// The training metrics of the pairwise preference methods (DPO and its loss variants, ORPO, CPO,
// SimPO), named as TRL names them, and the two loops every preference-style task shares: the
// micro-batch's pair indices on this rank, and held-out evaluation in batches.
//
// Per pair i, with log-probs ℓ_c, ℓ_r of the chosen and rejected answers (the ones the loss
// uses) and implicit rewards ρ_c, ρ_r (DPO: β·(log π − log π_ref); ORPO/CPO: β·log π), the
// metrics are means over the pairs:
//   rewards/chosen = mean ρ_c         rewards/rejected = mean ρ_r
//   rewards/accuracies = the fraction of pairs with ρ_c > ρ_r
//   rewards/margins = mean (ρ_c − ρ_r)
//   logps/chosen = mean ℓ_c           logps/rejected = mean ℓ_r
// then nll_loss (when the method has one) and any method-specific means (ORPO's log-odds).
// Known values: two pairs with rewards (ρ_c, ρ_r) = (1, 0) and (0.5, 1) give rewards/chosen
// 0.75, rewards/rejected 0.5, rewards/accuracies 0.5 and rewards/margins 0.25.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/preference_data.h"
#include "autograd/grad_mode.h"

namespace rlaif {

using Metrics = std::vector<std::pair<std::string, double>>;

// Running sums of the metrics above over the pairs seen so far.
struct PreferenceMetricSums {
  double loss = 0, chosen = 0, rejected = 0, accuracies = 0, margins = 0, logps_chosen = 0,
         logps_rejected = 0, nll = 0;
  int64_t pairs = 0;
  bool has_nll = false;  // report nll_loss
  // Method-specific per-pair sums, reported as means (by name) after the rest.
  std::vector<std::pair<std::string, double>> extra;

  // One pair: its loss, implicit rewards and log-probs (pairs is counted by the caller, per
  // batch).
  void add_pair(double pair_loss, double chosen_reward, double rejected_reward, double logp_chosen,
                double logp_rejected);
  int64_t count() const { return pairs; }
  // The means, each name prefixed by `prefix` ("val_" for held-out pairs).
  Metrics means(const std::string& prefix) const;
};

// The indices micro-batch `micro` of optimizer step `step` trains on this rank: the shuffled
// order's micro-batch number step·grad_accum + micro, of `batch` pairs, and this rank's share.
std::vector<int64_t> micro_batch_indices(const PairOrder& order, int64_t step, int64_t micro,
                                         int64_t grad_accum, int64_t batch, int rank, int ranks);

// Held-out evaluation without gradients: `score(indices, sums, tokens)` adds the metrics of
// examples [begin, begin + batch) for each batch of [0, total); then val_loss (the loss summed
// over every example divided by sums.count()) and sums.means("val_"). Empty when total is 0.
template <class Sums, class Score>
Metrics evaluate_in_batches(int64_t total, int64_t batch, Score score) {
  if (total == 0) return {};
  NoGradGuard no_grad;
  Sums sums;
  int64_t tokens = 0;
  for (int64_t begin = 0; begin < total; begin += batch) {
    score(index_range(begin, std::min(total, begin + batch)), sums, tokens);
  }
  Metrics out = {{"val_loss", sums.loss / static_cast<double>(sums.count())}};
  for (auto& m : sums.means("val_")) out.push_back(m);
  return out;
}

}  // namespace rlaif
