// Reward modelling: a transformer with a scalar head (score.weight, Hugging Face's
// *ForSequenceClassification with num_labels = 1) reads the final hidden state of the last real
// token of prompt + answer (+ EOS) and outputs one number, the reward r(x, y). It learns from
// preference pairs with the Bradley–Terry loss (Bradley & Terry, 1952; the reward model of
// InstructGPT, Ouyang et al., 2022, §3.5):
//   L = mean over pairs of  −log σ(r(x, y_c) − r(x, y_r) − m) + C·(r(x, y_c) + r(x, y_r))²
// with the optional margin m and centring coefficient C of algorithms/preference_losses.h.
//
// A micro-batch of B pairs is one forward pass over 2B rows (chosen rows, then rejected rows:
// algorithms/preference_data.h), in the shuffled order described there. Metrics, on the
// training micro-batches and on the held-out pairs ("val_" prefix): loss, accuracy (the fraction
// of pairs with r_c > r_r strictly: a tie is no preference) and margin (mean r_c − r_r).
//
// Data parallelism over R ranks (algorithms/trainer.h): rank r trains on its equal share of each
// micro-batch's pairs (rank_shard, algorithms/preference_data.h), its loss and metrics the means
// over that share, so the trainer's mean over ranks gives the micro-batch's values. Held-out
// metrics are computed by rank 0 alone, over every held-out pair.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/preference_data.h"
#include "algorithms/trainer.h"

namespace rlaif {

struct RewardOptions {
  int64_t batch = 8;         // B: pairs per micro-batch
  int64_t grad_accum = 1;    // A: micro-batches per optimizer step
  uint64_t seed = 0;         // data order
  bool use_margin = false;   // subtract each pair's margin (TokenizedPair::margin)
  double center_coef = 0.0;  // C
  int rank = 0;              // data-parallel rank (see above)
  int ranks = 1;             // R: --batch must be a multiple
};

// Gives `model` a scalar head when it has none, drawn as Transformer::init_weights draws
// score.weight (normal(0, 1/√(d+1)) from Philox(seed) at the head's own offset), so the head is
// the one a model created with num_labels = 1 and initialised with `seed` would have. The head is
// trainable. Returns whether a head was added.
bool ensure_scalar_head(Transformer& model, uint64_t seed);

// Loss, accuracy and margin of a set of pairs (means over pairs).
struct PairMetrics {
  double loss = 0.0;
  double accuracy = 0.0;
  double margin = 0.0;
  int64_t pairs = 0;
};

class RewardTask : public TrainingTask {
 public:
  // `val` may be empty. Every sequence must fit the model's context (Error otherwise), and the
  // model must have a scalar head.
  RewardTask(const Transformer& model, std::vector<TokenizedPair> train,
             std::vector<TokenizedPair> val, RewardOptions options);

  // Metrics: accuracy, margin, reward_chosen, reward_rejected (means over the micro-batch).
  MicroBatchResult micro_batch(int64_t step, int64_t micro, double scale) override;
  // val_loss, val_accuracy, val_margin over every held-out pair.
  std::vector<std::pair<std::string, double>> evaluate() override;

  // The metrics of `pairs` under the current model, without gradients, `options.batch` at a time.
  PairMetrics measure(const std::vector<TokenizedPair>& pairs) const;

 private:
  const Transformer& model_;
  std::vector<TokenizedPair> train_, val_;
  RewardOptions options_;
  PairOrder order_;
};

// Rewards of `examples` ([BOS] template(prompt) answer [EOS], as tokenize_example makes them)
// under a model with a scalar head, `batch` at a time, without gradients.
std::vector<double> score_examples(const Transformer& model,
                                   const std::vector<TokenizedExample>& examples, int64_t batch);

}  // namespace rlaif
