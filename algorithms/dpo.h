// Direct Preference Optimisation (Rafailov et al., 2023) and its variants: the policy π learns
// from preference pairs directly, without a reward model, by raising the log-likelihood ratio
// of chosen over rejected answers relative to a frozen reference π_ref (the starting policy by
// default). With completion log-probs given the prompt (summed over the answer's tokens, or per
// token average for IPO),
//   h = (log π(c) − log π(r)) − (log π_ref(c) − log π_ref(r))
// and the per-pair losses of algorithms/preference_losses.h (sigmoid, cDPO, robust, IPO, hinge,
// ...), averaged over the micro-batch's pairs.
//
// Combined losses (TRL's loss_type list with loss_weights): the loss is Σ_k w_k · L_k, each L_k
// on the log-probs it takes (summed, or per-token averages), plus, with sft_weight α > 0, α times
// the negative log-likelihood of the chosen answers per token (RPO, Pang et al., 2024):
//   L_sft = −Σ_i log π(c_i) / Σ_i |c_i|   over the micro-batch's pairs (its rank's share).
// Known value: two pairs whose chosen answers have summed log-probs −6 and −2 over 3 and 1
// tokens give L_sft = 8 / 4 = 2.
//
// The reference is either a live model, run without gradients on every batch, or precomputed:
// every pair's reference log-probs (summed and averaged, chosen and rejected) computed once
// before training and cached on disk (algorithms/reference_logprobs.h), so the reference model
// need not stay in memory.
//
// Metrics, named as TRL names them (means over the micro-batch's pairs; "val_" prefix on held-out
// pairs): rewards/chosen = β·(log π(c) − log π_ref(c)) (the implicit reward), rewards/rejected
// likewise, rewards/accuracies = the fraction with rewards/chosen > rewards/rejected,
// rewards/margins = their difference, logps/chosen and logps/rejected = log π of each side (the
// log-probs the loss uses: averages for IPO).
//
// Data parallelism over R ranks (algorithms/trainer.h): rank r trains on its equal share of each
// micro-batch's pairs (rank_shard, algorithms/preference_data.h), its loss and metrics the means
// over that share, so the trainer's mean over ranks gives the micro-batch's values. A live
// reference scores each rank's own share, never gathered. Precomputed tables cover every pair on
// every rank (any pair can fall in any rank's share): algorithms/reference_logprobs.h computes
// them in slices over the ranks.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/preference_data.h"
#include "algorithms/preference_losses.h"
#include "algorithms/reference_logprobs.h"
#include "algorithms/trainer.h"

namespace rlaif {

struct DpoOptions {
  int64_t batch = 8;       // B: pairs per micro-batch
  int64_t grad_accum = 1;  // A: micro-batches per optimizer step
  uint64_t seed = 0;       // data order
  double beta = 0.1;
  DpoLoss loss = DpoLoss::sigmoid;
  double loss_weight = 1.0;  // w of `loss`
  // Further DPO-family losses added with their weights (TRL's loss_type list).
  std::vector<std::pair<DpoLoss, double>> more_losses;
  double sft_weight = 0.0;       // α: the chosen answers' per-token NLL, added (0: none)
  double label_smoothing = 0.0;  // ε (sigmoid: cDPO; robust; exo_pair), for the losses that read it
  int rank = 0;                  // data-parallel rank (see above)
  int ranks = 1;                 // R: --batch must be a multiple
};

class DpoTask : public TrainingTask {
 public:
  // `val` may be empty. Every sequence must fit the policy's context (Error otherwise); a live
  // reference must share the policy's vocabulary, precomputed tables must match the pair counts.
  DpoTask(const Transformer& policy, DpoReference reference, std::vector<TokenizedPair> train,
          std::vector<TokenizedPair> val, DpoOptions options);

  // Metrics: rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen,
  // logps/rejected (of the first loss's log-probs), and nll_loss with sft_weight > 0.
  MicroBatchResult micro_batch(int64_t step, int64_t micro, double scale) override;
  // val_loss and the val_-prefixed metrics over every held-out pair.
  std::vector<std::pair<std::string, double>> evaluate() override;

 private:
  struct Sums;
  // Loss of the pairs `indices` of `pairs` (whose reference tables are `ref`, when precomputed);
  // adds its metrics into `sums`. Back-propagates loss·scale when `backward`.
  double pair_loss(const std::vector<TokenizedPair>& pairs, const RefLogprobs& ref,
                   const std::vector<int64_t>& indices, double scale, bool backward, Sums& sums,
                   int64_t& tokens) const;

  // The DPO-family losses with their weights: `loss`, then more_losses.
  std::vector<std::pair<DpoLoss, double>> loss_terms() const;

  const Transformer& policy_;
  DpoReference reference_;
  std::vector<TokenizedPair> train_, val_;
  DpoOptions options_;
  PairOrder order_;
};

}  // namespace rlaif
