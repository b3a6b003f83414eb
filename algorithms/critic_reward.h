// An LLM critic over the OpenAI-compatible API as the reward of reinforcement learning
// (RLAIF with a "direct" critic, as in Lee et al. 2023 and Sharma et al. 2024): every rollout's
// completion is sent to the critic, whose strictly parsed answer (io/judge.h) becomes the score.
//
// Two modes:
// - rating: the critic rates the completion from 1 to 10 (JudgeTemplate::default_rating() or a
//   template file); the reward is the rating.
// - pairwise: the critic compares the completion with a reference completion of the same prompt
//   (e.g. the teacher's demonstration); the reward is 1 when the completion wins, 0 when it
//   loses, 0.5 for a tie. With both_orders the critic is asked twice, the outputs swapped, and
//   a disagreement (position bias) is a tie; otherwise each pair is shown once, in an order fixed
//   by a hash of the prompt and completion, so position bias does not favour either side.
// An unparsed answer gets `unparsed_reward`: by default the middle of the scale (5.5 for rating,
// 0.5 for pairwise), so a critic that fails to answer pushes the policy neither way; the count of
// unparsed answers is kept so the run can report it. A request that fails (after the client's
// retries) or is interrupted is an Error naming the item: a silent default there would train on
// rewards nobody computed. A request the client's spending limit kept from being sent throws
// SpendLimitReached (io/spend_meter.h): the training loop saves a checkpoint and stops.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "algorithms/reward_function.h"
#include "io/judge.h"
#include "io/llm_client.h"

namespace rlaif {

enum class CriticMode { rating, pairwise };
// "rating" or "pairwise"; Error otherwise.
CriticMode parse_critic_mode(const std::string& name);

struct CriticRewardOptions {
  CriticMode mode = CriticMode::rating;
  std::optional<JudgeTemplate> judge;             // unset: the mode's default template
  std::map<std::string, std::string> references;  // pairwise: prompt -> reference completion
  bool both_orders = false;                       // pairwise: ask in both orders
  std::optional<double> unparsed_reward;          // unset: 5.5 (rating) or 0.5 (pairwise)
  int64_t max_tokens = 16;                        // tokens the critic may answer with
};

class CriticReward : public RewardFunction {
 public:
  // Error when a template's kind does not match the mode, or pairwise mode has no references.
  CriticReward(ClientOptions client, CriticRewardOptions options);
  ~CriticReward() override;

  // Sends every request of the batch at once (the client keeps `concurrency` in flight). Error
  // naming the prompt for a pairwise prompt without a reference, and for a failed request.
  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& completions) override;
  // Data-parallel runs ask the critic from rank 0 only (one cache, one --critic-max-rpm budget).
  bool scores_on_lead_rank() const override { return true; }

  // Over every score() call so far.
  int64_t judged() const { return judged_; }
  int64_t unparsed() const { return unparsed_; }
  const LlmClient& client() const { return *client_; }

 private:
  std::unique_ptr<LlmClient> client_;
  CriticRewardOptions options_;
  JudgeTemplate judge_;
  double unparsed_reward_;
  int64_t judged_ = 0, unparsed_ = 0, calls_ = 0;
};

}  // namespace rlaif
