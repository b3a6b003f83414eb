#include "algorithms/reward_function.h"

#include <algorithm>

#include "algorithms/reward.h"
#include "io/model_dir.h"

namespace rlaif {
namespace {

void check_pairs(const std::vector<std::string>& prompts,
                 const std::vector<std::string>& completions) {
  RLAIF_CHECK(prompts.size() == completions.size(), "reward: ", prompts.size(), " prompts but ",
              completions.size(), " completions");
}

}  // namespace

std::vector<double> LeadRankScores::score(const std::vector<std::string>&,
                                          const std::vector<std::string>&) {
  throw Error("the reward is computed on rank 0 only; rank 0 broadcasts the scores");
}

std::vector<double> FunctionReward::score(const std::vector<std::string>& prompts,
                                          const std::vector<std::string>& completions) {
  check_pairs(prompts, completions);
  std::vector<double> out;
  out.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) out.push_back(fn_(prompts[i], completions[i]));
  return out;
}

SumOfRewards::SumOfRewards(std::vector<std::unique_ptr<RewardFunction>> parts)
    : parts_(std::move(parts)) {
  RLAIF_CHECK(!parts_.empty(), "a sum of rewards needs at least one reward");
}

std::vector<double> SumOfRewards::score(const std::vector<std::string>& prompts,
                                        const std::vector<std::string>& completions) {
  check_pairs(prompts, completions);
  std::vector<double> total(prompts.size(), 0.0);
  for (const auto& part : parts_) {
    const std::vector<double> scores = part->score(prompts, completions);
    RLAIF_CHECK(scores.size() == total.size(), "reward: a part gave ", scores.size(),
                " scores for ", total.size(), " completions");
    for (size_t i = 0; i < total.size(); ++i) total[i] += scores[i];
  }
  return total;
}

bool SumOfRewards::scores_on_lead_rank() const {
  return std::any_of(parts_.begin(), parts_.end(),
                     [](const auto& part) { return part->scores_on_lead_rank(); });
}

RewardModelScorer::RewardModelScorer(const std::string& dir, RewardModelOptions options,
                                     Device device)
    : RewardModelScorer(load_model(dir, device), Tokenizer::load_dir(dir), std::move(options)) {}

RewardModelScorer::RewardModelScorer(Transformer model, Tokenizer tokenizer,
                                     RewardModelOptions options)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), options_(std::move(options)) {
  RLAIF_CHECK(model_.has_scalar_head(),
              "the reward model has no score head (config num_labels = 1, tensor score.weight): "
              "train one with `rlaif rm`");
  RLAIF_CHECK(tokenizer_.vocab_size() <= model_.config().vocab_size,
              "the reward model's tokenizer has ", tokenizer_.vocab_size(),
              " tokens, more than its vocabulary of ", model_.config().vocab_size);
  RLAIF_CHECK(options_.batch > 0, "reward model: the scoring batch must be positive");
  options_.truncation.max_length =
      std::min(options_.truncation.max_length, model_.config().max_position_embeddings);
  model_.set_requires_grad(false);
}

std::vector<double> RewardModelScorer::score(const std::vector<std::string>& prompts,
                                             const std::vector<std::string>& completions) {
  check_pairs(prompts, completions);
  std::vector<TokenizedExample> examples;
  examples.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    examples.push_back(tokenize_example(tokenizer_, options_.chat, prompts[i], completions[i],
                                        options_.truncation, /*add_eos=*/true));
  }
  // The layout and the forward pass of `rlaif rm` / `rlaif score` (algorithms/reward.h).
  return score_examples(model_, examples, options_.batch);
}

}  // namespace rlaif
