// Where the reward of reinforcement learning comes from: anything that scores a prompt's
// completion with one number. PPO, RLOO and GRPO see only this interface, so the score can come
// from a trained reward model (here), rules on the prompts' dataset columns
// (algorithms/rule_rewards.h), a function (tests), an LLM critic over the API
// (algorithms/critic_reward.h) or the user's own reward server (algorithms/server_reward.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "algorithms/sequences.h"
#include "io/chat_template.h"
#include "io/tokenizer.h"
#include "model/transformer.h"

namespace rlaif {

class RewardFunction {
 public:
  virtual ~RewardFunction() = default;
  // One score per (prompt, completion) pair; the two lists have equal length. `prompts` are the
  // raw prompts (before any chat template); `completions` the decoded responses (no EOS).
  virtual std::vector<double> score(const std::vector<std::string>& prompts,
                                    const std::vector<std::string>& completions) = 0;
  // Under data parallelism (algorithms/ppo_data_parallel.h), whether rank 0 alone scores every
  // sequence and broadcasts the scores (an API critic: one request cache and one rate limit per
  // run) instead of each rank scoring its own sequences (a local model or a function).
  virtual bool scores_on_lead_rank() const { return false; }
};

// What the ranks other than 0 hold in place of a reward that scores_on_lead_rank(): it is never
// asked (score() throws Error), it only says that rank 0 scores.
class LeadRankScores final : public RewardFunction {
 public:
  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& completions) override;
  bool scores_on_lead_rank() const override { return true; }
};

// A reward computed by a function of one (prompt, completion): verifiers and tests.
class FunctionReward : public RewardFunction {
 public:
  using Fn = std::function<double(const std::string& prompt, const std::string& completion)>;
  explicit FunctionReward(Fn fn) : fn_(std::move(fn)) {}
  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& completions) override;

 private:
  Fn fn_;
};

// The sum of several rewards, R = Σ_j R_j (e.g. a reward model's score plus rule rewards): it
// scores on the lead rank when any part does (rank 0 then computes every part for every
// sequence).
class SumOfRewards : public RewardFunction {
 public:
  explicit SumOfRewards(std::vector<std::unique_ptr<RewardFunction>> parts);
  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& completions) override;
  bool scores_on_lead_rank() const override;

 private:
  std::vector<std::unique_ptr<RewardFunction>> parts_;
};

struct RewardModelOptions {
  ChatTemplate chat;             // how prompts were rendered when the reward model was trained
  TruncationOptions truncation;  // max_length is also capped at the model's context
  int64_t batch = 16;            // sequences per forward pass
};

// A scalar-head model (HF *ForSequenceClassification, num_labels = 1) scoring
// [BOS] template(prompt) completion [EOS] by its head's output at the last token, the layout
// reward-model training uses (algorithms/sequences.h), under no_grad.
class RewardModelScorer : public RewardFunction {
 public:
  // Loads a model directory with a score head and a tokenizer; Error naming the directory
  // when either is missing.
  RewardModelScorer(const std::string& dir, RewardModelOptions options,
                    Device device = Device::cpu());
  RewardModelScorer(Transformer model, Tokenizer tokenizer, RewardModelOptions options);

  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& completions) override;

  const Transformer& model() const { return model_; }

 private:
  Transformer model_;
  Tokenizer tokenizer_;
  RewardModelOptions options_;
};

}  // namespace rlaif
