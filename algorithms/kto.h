// Kahneman-Tversky Optimisation (Ethayarajh et al., 2024, "KTO: Model Alignment as Prospect
// Theoretic Optimization"): the policy π learns from single completions labelled desirable or
// undesirable, not from pairs. With the log-ratio to a frozen reference π_ref (summed over the
// completion's tokens)
//   r(x, y) = log π(y|x) − log π_ref(y|x)
// and a reference point z0 (below), the loss of one example is
//   desirable     L = λ_D · (1 − σ(β·(r − z0)))
//   undesirable   L = λ_U · (1 − σ(β·(z0 − r)))
// averaged over the micro-batch's examples (TRL's KTOTrainer, loss_type "kto": β = 0.1 and
// λ_D = λ_U = 1 by default; raise the weight of the rarer kind when the two are unbalanced).
//
// The reference point z0 estimates KL(π ‖ π_ref) as TRL does: every example i is also scored on
// a mismatched pair, its prompt x_i with the completion of the example before it in the data
// (i − 1, cyclically; an example alone in its set is its own pair), and
//   z0 = max(0, mean_i [log π(y_{i−1}|x_i) − log π_ref(y_{i−1}|x_i)])
// over the micro-batch, computed without gradients (z0 is a constant of the loss). The pairing
// is fixed by the data's order, not by the shuffled batches (TRL pairs the dataset once, before
// shuffling), so a precomputed reference covers the mismatched pairs too.
//
// Known values: at the start (π = π_ref) every r and z0 are 0, so every loss is 1 − σ(0) = ½ and
// the loss is ½ with weights 1. With β = 0.1, z0 = 2 and r = 12 for a desirable example,
// L = 1 − σ(1) = 0.268941; r = −8 for an undesirable one, L = 1 − σ(1) = 0.268941 too.
//
// Paired preference data becomes unpaired as TRL unpairs it (io/datasets.h, unpair_preferences):
// every chosen answer desirable, then every rejected answer undesirable.
//
// Metrics, named as TRL names them (micro-batch means; "val_" prefix on the held-out set):
// rewards/chosen = mean β·r over the desirable examples, rewards/rejected over the undesirable
// ones (0 in a micro-batch with none of that kind), rewards/margins = their difference,
// logps/chosen and logps/rejected = the mean log π of each kind, kl = z0.
//
// Data parallelism over R ranks: as DPO (algorithms/dpo.h), rank r trains on its equal share of
// each micro-batch's examples; z0, as TRL all-reduces it, is the mean over the whole micro-batch:
// each rank sums its share's mismatched log-ratios and KtoOptions::comm adds them up, so every
// rank, and the one-process run, uses the same z0. Held-out evaluation runs on one rank (the
// trainer's rank 0), each chunk of --batch examples with its own z0.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/dpo.h"
#include "algorithms/preference_data.h"
#include "algorithms/trainer.h"
#include "io/datasets.h"

namespace rlaif {

class Communicator;  // runtime/communicator.h

struct KtoExample {
  TokenizedExample example;     // prompt + completion (+ EOS)
  TokenizedExample mismatched;  // the same prompt + the previous example's completion
  bool desirable = true;
};

// Tokenises every example (tokenize_reply, EOS appended) and forms its mismatched pair: its
// prompt with the previous example's completion, cut from the right to fit max_length.
std::vector<KtoExample> tokenize_kto_examples(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                              const std::vector<LabeledCompletion>& examples,
                                              const TruncationOptions& truncation);

// Sets every example's mismatched pair: its prompt with the previous example's completion
// (cyclically), the completion cut from the right so that the sequence fits max_length (keeping at
// least one token).
void pair_mismatched(std::vector<KtoExample>& examples, int64_t max_length);

// The examples as pairs for the reference log-prob tables of algorithms/reference_logprobs.h:
// "chosen" is the example, "rejected" its mismatched pair (so RefLogprobs::chosen_sum holds
// log π_ref(y_i|x_i) and rejected_sum log π_ref(y_{i−1}|x_i)).
std::vector<TokenizedPair> kto_as_pairs(const std::vector<KtoExample>& examples);

// Per-example KTO loss [N] from the policy's and the reference's log-probs of the completions,
// [N] each, given the reference point z0 (a constant) and which examples are desirable (N
// flags). beta > 0; weights ≥ 0.
Variable kto_loss(const Variable& policy_logps, const Variable& ref_logps,
                  const std::vector<uint8_t>& desirable, double z0, double beta,
                  double desirable_weight = 1.0, double undesirable_weight = 1.0);

// z0 from the mismatched pairs' log-probs: max(0, mean(policy − reference)); 0 for none.
double kto_reference_point(const std::vector<float>& policy_mismatched,
                           const std::vector<float>& ref_mismatched);

struct KtoOptions {
  int64_t batch = 8;       // B: examples per micro-batch
  int64_t grad_accum = 1;  // A: micro-batches per optimizer step
  uint64_t seed = 0;       // data order
  double beta = 0.1;
  double desirable_weight = 1.0;    // λ_D
  double undesirable_weight = 1.0;  // λ_U
  int rank = 0;                     // data-parallel rank (see above)
  int ranks = 1;                    // R: --batch must be a multiple
  // Adds up the ranks' mismatched log-ratios; required when ranks > 1.
  Communicator* comm = nullptr;
};

class KtoTask : public TrainingTask {
 public:
  // `val` may be empty. Every sequence must fit the policy's context (Error otherwise); a live
  // reference must share the policy's vocabulary; precomputed tables (DpoReference::train and
  // ::val, from kto_as_pairs) must match the example counts.
  KtoTask(const Transformer& policy, DpoReference reference, std::vector<KtoExample> train,
          std::vector<KtoExample> val, KtoOptions options);

  // Metrics: rewards/chosen, rewards/rejected, rewards/margins, logps/chosen, logps/rejected, kl.
  MicroBatchResult micro_batch(int64_t step, int64_t micro, double scale) override;
  // val_loss and the val_-prefixed metrics over every held-out example.
  std::vector<std::pair<std::string, double>> evaluate() override;

 private:
  struct Sums;
  // Loss of the examples `indices` of `examples` (whose reference tables are `ref`, when
  // precomputed); adds its metrics into `sums`. With `share_kl`, z0 is the mean over every
  // rank's share. Back-propagates loss·scale when `backward`.
  double example_loss(const std::vector<KtoExample>& examples, const RefLogprobs& ref,
                      const std::vector<int64_t>& indices, double scale, bool backward,
                      bool share_kl, Sums& sums, int64_t& tokens) const;

  const Transformer& policy_;
  DpoReference reference_;
  std::vector<KtoExample> train_, val_;
  KtoOptions options_;
  PairOrder order_;
};

}  // namespace rlaif
