// Online and iterative DPO: the policy's own samples, judged as training goes, are its
// preference pairs (Guo et al., 2024, "Direct Language Model Alignment from Online AI Feedback";
// TRL's OnlineDPOTrainer). Static AI-feedback data goes stale as the policy moves away from the
// model that wrote it; here every pair is about what the policy says now.
//
// Online (rounds = 0), every micro-batch of every step:
//   1. B prompts, the next of an endless shuffled sequence over the prompt list (Philox: seed;
//      rollout_prompt_indices, algorithms/ppo_rollout.h, one "rollout" per micro-batch);
//   2. two completions y₁, y₂ of each sampled from the current policy at --temperature, sequence
//      streams fixed by (step, micro-batch, sample), so a resumed run samples what the
//      uninterrupted run sampled;
//   3. the judge (algorithms/pair_judge.h) says which is better: the winner is chosen, the other
//      rejected; a tie or an unparsed verdict gives no pair;
//   4. one DPO-family loss on those pairs against the frozen reference (algorithms/dpo.h: every
//      --loss, --beta and --label-smoothing of `rlaif dpo`).
// Iterative (rounds = N ≥ 1): the run's steps are cut into N rounds of ⌈steps/N⌉. At the start of
// round r the policy, frozen, samples two completions for each of the round's prompts (B·A per
// step of the round, from the same endless sequence), the judge labels them all at once, and the
// round trains on those pairs as offline DPO does (shuffled, epochs as needed). The reference
// stays the initial policy. Each round's pairs are written to ROUNDS_DIR/round_NNNN.jsonl
// (atomically) before it trains, so a run resumed mid-round trains on the same pairs instead of
// sampling them again from a policy that has moved.
//
// An API critic's answers are cached by the client (io/llm_client.h), so a run resumed after a
// crash or Ctrl-C asks nothing it already asked. On the CPU a run is deterministic for a fixed
// cache.
//
// Metrics (TRL's names where TRL has them): the DPO metrics of the pairs (rewards/chosen,
// rewards/rejected, rewards/margins, rewards/accuracies, logps/chosen, logps/rejected),
// objective/kl (the mean of log π − log π_ref over both samples of the judged pairs, summed over
// each completion's tokens), objective/scores and objective/scores_margin (a scoring judge: the
// mean score of all samples, and of chosen minus rejected), val/contain_eos_token (the fraction
// of samples that ended with EOS), judge/pairs (pairs trained on per micro-batch) and
// judge/skipped_fraction (ties and unparsed verdicts among the judged prompts).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "algorithms/dpo.h"
#include "algorithms/pair_judge.h"
#include "io/chat_template.h"
#include "io/tokenizer.h"

namespace rlaif {

struct OnlineDpoOptions {
  DpoOptions dpo;               // the loss (batch, grad_accum, rank and ranks are set here)
  int64_t batch_prompts = 8;    // B: prompts per micro-batch (two samples each)
  int64_t grad_accum = 1;       // A: micro-batches per step
  int64_t steps = 0;            // the run's steps (rounds are cut from them)
  int64_t rounds = 0;           // 0: online; N ≥ 1: iterative, N rounds
  std::string rounds_dir;       // where the rounds' pairs are kept (required with rounds)
  int64_t max_new_tokens = 64;  // per sample
  double temperature = 1.0;     // > 0
  int64_t max_prompt_length = 256;
  ChatTemplate chat;
  uint64_t seed = 0;           // prompt order and sampling
  int64_t forward_batch = 16;  // sequences per generation batch
};

class OnlineDpoTask : public TrainingTask {
 public:
  // The reference must outlive the task (the initial policy, or the policy with its adapters
  // off). Error for empty prompts or options out of range.
  OnlineDpoTask(const Transformer& policy, const Transformer& reference, const Tokenizer& tokenizer,
                std::vector<std::string> prompts, PairJudge& judge, OnlineDpoOptions options);
  ~OnlineDpoTask() override;

  MicroBatchResult micro_batch(int64_t step, int64_t micro, double scale) override;

  // The pairs of a judged batch, with what the metrics need.
  struct JudgedPairs {
    std::vector<TokenizedPair> pairs;
    std::vector<std::pair<std::string, double>> metrics;  // the judging metrics above
  };
  // Samples two completions for each of `prompt_indices` (sequence streams from stream_base) and
  // judges them.
  JudgedPairs sample_and_judge(const std::vector<int64_t>& prompt_indices, uint64_t stream_base);

 private:
  // The round's pairs: read from its file when it exists, else sampled, judged and written.
  const JudgedPairs& round_pairs(int64_t round);
  int64_t steps_per_round() const;

  const Transformer& policy_;
  const Transformer& reference_;
  const Tokenizer& tokenizer_;
  std::vector<std::string> prompts_;
  PairJudge& judge_;
  OnlineDpoOptions options_;
  int64_t loaded_round_ = -1;
  JudgedPairs round_;
  std::unique_ptr<DpoTask> round_task_;
};

}  // namespace rlaif
