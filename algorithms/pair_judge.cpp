#include "algorithms/pair_judge.h"

#include "runtime/error.h"

namespace rlaif {
namespace {

void check_sizes(const std::vector<std::string>& prompts, const std::vector<std::string>& first,
                 const std::vector<std::string>& second) {
  RLAIF_CHECK(prompts.size() == first.size() && prompts.size() == second.size(),
              "pair judge: ", prompts.size(), " prompts for ", first.size(), " and ", second.size(),
              " completions");
}

}  // namespace

std::vector<PairOutcome> ScoreJudge::judge(const std::vector<std::string>& prompts,
                                           const std::vector<std::string>& first,
                                           const std::vector<std::string>& second) {
  check_sizes(prompts, first, second);
  // One scoring call for both sides: a reward model batches them, a critic sends them at once.
  std::vector<std::string> all_prompts = prompts, all_completions = first;
  all_prompts.insert(all_prompts.end(), prompts.begin(), prompts.end());
  all_completions.insert(all_completions.end(), second.begin(), second.end());
  const std::vector<double> scores = reward_.score(all_prompts, all_completions);
  RLAIF_CHECK(scores.size() == all_prompts.size(), "pair judge: the reward gave ", scores.size(),
              " scores for ", all_prompts.size(), " completions");
  const size_t n = prompts.size();
  first_.assign(scores.begin(), scores.begin() + static_cast<long>(n));
  second_.assign(scores.begin() + static_cast<long>(n), scores.end());
  std::vector<PairOutcome> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(first_[i] > second_[i]   ? PairOutcome::first
                  : first_[i] < second_[i] ? PairOutcome::second
                                           : PairOutcome::tie);
  }
  return out;
}

CriticPairJudge::CriticPairJudge(ClientOptions client, JudgeTemplate judge, bool both_orders)
    : judge_(std::move(judge)), both_orders_(both_orders) {
  RLAIF_CHECK(judge_.kind() == JudgeTemplate::Kind::pairwise,
              "pair judge: a rating template cannot compare two completions");
  client_ = std::make_unique<LlmClient>(std::move(client));
}

std::vector<PairOutcome> CriticPairJudge::judge(const std::vector<std::string>& prompts,
                                                const std::vector<std::string>& first,
                                                const std::vector<std::string>& second) {
  check_sizes(prompts, first, second);
  ++calls_;
  std::vector<CompletionRequest> requests;
  std::vector<size_t> begin;
  std::vector<std::vector<bool>> first_as_a(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string item = "critic request for pair " + std::to_string(i) + " of judging call " +
                             std::to_string(calls_);
    begin.push_back(requests.size());
    for (CompletionRequest& r :
         pair_requests(judge_, prompts[i], first[i], second[i], both_orders_, item, first_as_a[i]))
      requests.push_back(std::move(r));
  }
  const std::vector<CompletionResult> results = client_->complete_all(requests);
  if (client_->stopped_by_spend_limit()) {
    throw SpendLimitReached("pair judge: stopped by the spending limit ",
                            client_->reached_spend_limit());
  }
  for (const CompletionResult& r : results) RLAIF_CHECK(r.ok, "pair judge: ", r.error);
  std::vector<PairOutcome> out;
  out.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<std::string> answers;
    for (size_t j = 0; j < first_as_a[i].size(); ++j) answers.push_back(results[begin[i] + j].text);
    out.push_back(pair_outcome(answers, first_as_a[i]));
  }
  return out;
}

}  // namespace rlaif
