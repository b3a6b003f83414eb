#include "algorithms/critic_reward.h"

#include "runtime/error.h"

namespace rlaif {
namespace {

JudgeTemplate judge_for(const CriticRewardOptions& o) {
  if (o.judge) return *o.judge;
  return o.mode == CriticMode::rating ? JudgeTemplate::default_rating()
                                      : JudgeTemplate::default_pairwise();
}

}  // namespace

CriticMode parse_critic_mode(const std::string& name) {
  if (name == "rating") return CriticMode::rating;
  if (name == "pairwise") return CriticMode::pairwise;
  throw Error("critic mode must be rating or pairwise, got '", name, "'");
}

CriticReward::CriticReward(ClientOptions client, CriticRewardOptions options)
    : options_(std::move(options)), judge_(judge_for(options_)) {
  const bool rating = options_.mode == CriticMode::rating;
  RLAIF_CHECK((judge_.kind() == JudgeTemplate::Kind::rating) == rating, "critic reward: a ",
              rating ? "pairwise" : "rating", " template cannot serve the ",
              rating ? "rating" : "pairwise", " mode");
  RLAIF_CHECK(rating || !options_.references.empty(),
              "critic reward: pairwise mode needs reference completions");
  unparsed_reward_ = options_.unparsed_reward.value_or(rating ? 5.5 : 0.5);
  RLAIF_CHECK(options_.max_tokens >= 1, "critic reward: max_tokens must be at least 1");
  judge_.set_max_tokens(options_.max_tokens);
  client_ = std::make_unique<LlmClient>(std::move(client));
}

CriticReward::~CriticReward() = default;

std::vector<double> CriticReward::score(const std::vector<std::string>& prompts,
                                        const std::vector<std::string>& completions) {
  RLAIF_CHECK(prompts.size() == completions.size(), "critic reward: ", prompts.size(),
              " prompts but ", completions.size(), " completions");
  ++calls_;
  const bool pairwise = options_.mode == CriticMode::pairwise;
  // Per completion: its requests (first[i] onwards) and where it was shown.
  std::vector<CompletionRequest> requests;
  std::vector<size_t> first;
  std::vector<std::vector<bool>> x_as_a(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string item = "critic request for completion " + std::to_string(i) +
                             " of scoring call " + std::to_string(calls_);
    first.push_back(requests.size());
    if (!pairwise) {
      requests.push_back(judge_.rating_request(prompts[i], completions[i], item));
      continue;
    }
    auto ref = options_.references.find(prompts[i]);
    RLAIF_CHECK(ref != options_.references.end(),
                "critic reward: no reference completion for the prompt \"",
                prompts[i].substr(0, 80), prompts[i].size() > 80 ? "...\"" : "\"");
    for (CompletionRequest& r : pair_requests(judge_, prompts[i], completions[i], ref->second,
                                              options_.both_orders, item, x_as_a[i])) {
      requests.push_back(std::move(r));
    }
  }
  const std::vector<CompletionResult> results = client_->complete_all(requests);
  if (client_->stopped_by_spend_limit()) {
    throw SpendLimitReached("critic reward: stopped by the spending limit ",
                            client_->reached_spend_limit());
  }
  for (const CompletionResult& r : results) {
    RLAIF_CHECK(r.ok, "critic reward: ", r.error);
  }

  std::vector<double> scores(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    ++judged_;
    if (!pairwise) {
      std::optional<int> rating = parse_rating_answer(results[first[i]].text);
      if (!rating) ++unparsed_;
      scores[i] = rating ? static_cast<double>(*rating) : unparsed_reward_;
      continue;
    }
    std::vector<std::string> answers;
    for (size_t j = 0; j < x_as_a[i].size(); ++j) answers.push_back(results[first[i] + j].text);
    switch (pair_outcome(answers, x_as_a[i])) {
      case PairOutcome::first:
        scores[i] = 1.0;
        break;
      case PairOutcome::second:
        scores[i] = 0.0;
        break;
      case PairOutcome::tie:
        scores[i] = 0.5;
        break;
      case PairOutcome::unparsed:
        ++unparsed_;
        scores[i] = unparsed_reward_;
        break;
    }
  }
  return scores;
}

}  // namespace rlaif
