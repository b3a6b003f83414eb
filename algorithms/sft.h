// Supervised fine-tuning (SFT): teach a pretrained model to answer prompts the way a dataset of
// demonstrations does, by maximum likelihood on the demonstrations' completions only.
//
// The objective (Ouyang et al., 2022, "Training language models to follow instructions with human
// feedback", §3.5; the SFT stage of Bai et al., 2022, "Constitutional AI", and of Sharma et al.,
// 2024, "A Critical Evaluation of AI Feedback for Aligning Large Language Models"): for a
// micro-batch of examples (x_i, y_i), prompt x and completion y = (y_1 .. y_{|y|}, EOS),
//   L(θ) = −(1 / Σ_i |y_i|) · Σ_i Σ_t log π_θ(y_{i,t} | x_i, y_{i,<t})
// the mean negative log-likelihood per completion token. Prompt tokens are context, never
// targets (the model is not taught to write the user's part); EOS is a target, so the model learns
// where an answer ends. Sequences are laid out and truncated as algorithms/sequences.h states:
// the prompt is cut from the left first, then the completion from the right.
//
// Gradient accumulation weighs the A micro-batches of a step equally (trainer.h), so a step's
// loss is the mean of per-micro-batch token means; with A = 1 it is the token mean of the batch.
//
// Data parallelism over R ranks (rank r): every rank draws the same micro-batch and trains on its
// examples [r·B/R, (r+1)·B/R), B divisible by R. Shards hold different numbers of completion
// tokens, so a rank divides its NLL sum by C/R, C the whole micro-batch's completion tokens (known
// on every rank from the tokenized lengths): the mean over ranks is then the micro-batch's token
// mean, exactly as on one rank.
//
// Data order: micro-batch k = step·A + micro takes positions [k·B, (k+1)·B) of an endless stream
// of epochs, position p being example perm_e[p mod N] with e = ⌊p / N⌋, where perm_e is a
// Fisher-Yates shuffle of 0..N−1 drawn from Philox(seed, stream e). The examples of any step are
// therefore a pure function of (seed, step), so a resumed run sees exactly the uninterrupted
// run's batches; each epoch visits every example once.
//
// Packing (--packing): the B examples of a micro-batch are packed greedily into rows of
// max_length tokens, each example its own attention segment with positions restarting at 0
// (sequences.h), so every token sees exactly what it saw unpacked and the loss, a sum over the
// same completion tokens divided by the same count, is unchanged: only padding is saved.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/sequences.h"
#include "algorithms/trainer.h"
#include "io/chat_template.h"
#include "io/datasets.h"
#include "io/tokenizer.h"

namespace rlaif {

struct SftOptions {
  int64_t batch = 8;         // B: examples per micro-batch
  int64_t grad_accum = 1;    // A: micro-batches per optimizer step
  uint64_t seed = 0;         // data order
  bool packing = false;      // pack each micro-batch into rows of `row_length` tokens
  int64_t row_length = 512;  // packed row width (= --max-length)
  int rank = 0;              // data-parallel rank (see above)
  int ranks = 1;             // R
};

// Tokenises every example once, as sequences.h lays conversations out: every assistant reply
// of a conversation is trained, or only the last with `last_reply_only`. A conversation whose
// template rewrites earlier replies gives one example per reply; `split_conversations` counts
// those conversations.
std::vector<TokenizedExample> tokenize_sft_examples(const Tokenizer& tokenizer,
                                                    const ChatTemplate& chat,
                                                    const std::vector<SftExample>& examples,
                                                    const TruncationOptions& truncation,
                                                    bool last_reply_only = false,
                                                    int64_t* split_conversations = nullptr);

// Optimizer steps that make `epochs` passes over n examples: ⌈epochs·n / (B·A)⌉ (at least 1).
int64_t sft_steps_for_epochs(double epochs, int64_t n, int64_t batch, int64_t grad_accum);

class SftTask : public TrainingTask {
 public:
  // `val` may be empty (no held-out loss). Every sequence must fit the model's context and hold at
  // least one completion token; Error naming the example otherwise.
  SftTask(const Transformer& model, std::vector<TokenizedExample> train,
          std::vector<TokenizedExample> val, SftOptions options);

  MicroBatchResult micro_batch(int64_t step, int64_t micro, double scale) override;
  // {"val_loss", mean NLL per completion token over the whole held-out set}.
  std::vector<std::pair<std::string, double>> evaluate() override;

  // Training-example indices of micro-batch k (the data order above).
  std::vector<int64_t> batch_indices(int64_t k) const;
  // The batch those examples make (packed or padded, per the options).
  SequenceBatch make_sequences(const std::vector<TokenizedExample>& examples) const;
  // Σ over completion tokens of −log π(token) for `batch`, and back-propagates
  // (sum / normaliser)·scale when `backward`. Returns the sum.
  double completion_nll(const SequenceBatch& batch, double normaliser, double scale,
                        bool backward) const;

  int64_t train_size() const { return static_cast<int64_t>(train_.size()); }

 private:
  const std::vector<int64_t>& permutation(int64_t epoch) const;

  const Transformer& model_;
  std::vector<TokenizedExample> train_, val_;
  SftOptions options_;
  // The last epoch's permutation, cached: a pure function of (seed, epoch), recomputed on demand.
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> cached_perm_;
};

}  // namespace rlaif
