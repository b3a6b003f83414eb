// Which of two completions of one prompt is better: the judge that turns a policy's own samples
// into preference pairs (online DPO, algorithms/online_dpo.h).
//
// Two kinds:
// - ScoreJudge: any RewardFunction (a reward model, a rule, an API rating) scores both
//   completions; the higher score wins and equal scores tie. The scores stay available for
//   logging (TRL's objective/scores).
// - CriticPairJudge: an LLM critic over the OpenAI-compatible API sees the prompt and both
//   completions (io/judge.h's pairwise template) and names the better. With both_orders it is
//   asked twice, the completions swapped, and a disagreement (position bias) is a tie; otherwise
//   each pair is shown once, in an order fixed by a hash of the two texts (show_swapped), so
//   position bias favours neither sample. An unparsed answer counts as unparsed, never guessed.
// A tie or an unparsed verdict gives no pair: the trainer skips it and logs how many it skipped.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "algorithms/reward_function.h"
#include "io/judge.h"
#include "io/llm_client.h"

namespace rlaif {

class PairJudge {
 public:
  virtual ~PairJudge() = default;
  // For each i, first[i] against second[i] as answers to prompts[i] (raw prompts, decoded
  // completions): PairOutcome::first when first[i] is better, second, tie or unparsed.
  virtual std::vector<PairOutcome> judge(const std::vector<std::string>& prompts,
                                         const std::vector<std::string>& first,
                                         const std::vector<std::string>& second) = 0;
  // The last judge() call's scores of first and second, when the judge scores (empty otherwise).
  virtual const std::vector<double>& last_first_scores() const { return none_; }
  virtual const std::vector<double>& last_second_scores() const { return none_; }

 private:
  std::vector<double> none_;
};

class ScoreJudge final : public PairJudge {
 public:
  explicit ScoreJudge(RewardFunction& reward) : reward_(reward) {}
  std::vector<PairOutcome> judge(const std::vector<std::string>& prompts,
                                 const std::vector<std::string>& first,
                                 const std::vector<std::string>& second) override;
  const std::vector<double>& last_first_scores() const override { return first_; }
  const std::vector<double>& last_second_scores() const override { return second_; }

 private:
  RewardFunction& reward_;
  std::vector<double> first_, second_;
};

class CriticPairJudge final : public PairJudge {
 public:
  // `judge` must be a pairwise template (Error otherwise); the client's cache (ClientOptions::
  // cache_path) makes a repeated question free, so a resumed run asks nothing twice. judge()
  // throws SpendLimitReached when the client's spending limit kept a request from being sent.
  CriticPairJudge(ClientOptions client, JudgeTemplate judge, bool both_orders);
  std::vector<PairOutcome> judge(const std::vector<std::string>& prompts,
                                 const std::vector<std::string>& first,
                                 const std::vector<std::string>& second) override;
  const LlmClient& client() const { return *client_; }

 private:
  std::unique_ptr<LlmClient> client_;
  JudgeTemplate judge_;
  bool both_orders_;
  int64_t calls_ = 0;
};

}  // namespace rlaif
