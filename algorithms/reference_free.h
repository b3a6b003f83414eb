// Preference optimisation without a reference model: ORPO, CPO and SimPO train the policy π on
// preference pairs from its own log-probabilities alone (equations, papers and known values:
// algorithms/reference_free_losses.h). Per micro-batch of n pairs (one forward pass over the 2n
// answers, algorithms/preference_data.h's layout):
//   ORPO  L = NLL + mean_i −λ·log σ(log odds(c_i) − log odds(r_i))      (λ: beta)
//   CPO   L = mean_i L_kind(c_i, r_i) + α·NLL     (kind: sigmoid, hinge, ipo, simpo)
// with NLL = −Σ_i log π(c_i) / Σ_i |c_i| over the micro-batch's chosen answers (its rank's share
// under data parallelism, as DPO's sft term). SimPO is CPO with kind simpo and α = 0, as TRL
// runs it (CPOTrainer with loss_type "simpo", cpo_alpha 0).
//
// Metrics, named as TRL's ORPOTrainer and CPOTrainer name them (means over the micro-batch's
// pairs; "val_" prefix on held-out pairs), with the log-probs the loss uses (per-token averages
// for ORPO, ipo and simpo; sums otherwise): rewards/chosen = β·log π(c), rewards/rejected
// likewise, rewards/accuracies = the fraction with rewards/chosen > rewards/rejected,
// rewards/margins = their difference, logps/chosen, logps/rejected, nll_loss (the chosen answers'
// NLL, logged also with α = 0, where TRL logs 0 as it skips computing it); ORPO adds
// log_odds_ratio = mean log σ(log odds(c) − log odds(r)) and log_odds_chosen = mean
// (log odds(c) − log odds(r)).
//
// Data parallelism over R ranks: as DPO (algorithms/dpo.h), each rank trains on its equal share
// of every micro-batch, with no reference to score or share.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/preference_data.h"
#include "algorithms/reference_free_losses.h"
#include "algorithms/trainer.h"

namespace rlaif {

enum class ReferenceFreeMethod { orpo, cpo };

struct ReferenceFreeOptions {
  ReferenceFreeMethod method = ReferenceFreeMethod::cpo;
  CpoLoss loss = CpoLoss::sigmoid;  // CPO's loss (ignored by ORPO)
  int64_t batch = 8;                // B: pairs per micro-batch
  int64_t grad_accum = 1;           // A: micro-batches per optimizer step
  uint64_t seed = 0;                // data order
  double beta = 0.1;                // CPO's β; ORPO's λ
  double nll_weight = 1.0;          // CPO's α (ORPO's NLL weighs 1)
  double simpo_gamma = 0.5;         // γ of the simpo loss (ignored by the others)
  double label_smoothing = 0.0;     // ε of the sigmoid and simpo losses
  int rank = 0;                     // data-parallel rank
  int ranks = 1;                    // R: --batch must be a multiple
};

class ReferenceFreeTask : public TrainingTask {
 public:
  // `val` may be empty. Every sequence must fit the policy's context (Error otherwise).
  ReferenceFreeTask(const Transformer& policy, std::vector<TokenizedPair> train,
                    std::vector<TokenizedPair> val, ReferenceFreeOptions options);

  MicroBatchResult micro_batch(int64_t step, int64_t micro, double scale) override;
  // val_loss and the val_-prefixed metrics over every held-out pair.
  std::vector<std::pair<std::string, double>> evaluate() override;

 private:
  struct Sums;
  double pair_loss(const std::vector<TokenizedPair>& pairs, const std::vector<int64_t>& indices,
                   double scale, bool backward, Sums& sums, int64_t& tokens) const;
  bool orpo() const { return options_.method == ReferenceFreeMethod::orpo; }

  const Transformer& policy_;
  std::vector<TokenizedPair> train_, val_;
  ReferenceFreeOptions options_;
  PairOrder order_;
};

}  // namespace rlaif
