// The reward functions of algorithms/reward_function.h: a reward model scores a completion at its
// last token exactly as reward-model training lays pairs out, whatever the batching, and a plain
// function scores what it is given.
#include "algorithms/reward_function.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "algorithms/reward.h"
#include "tests/algorithms/synthetic_sort.h"

namespace rlaif {
namespace {

using namespace rlaif::testing;

TEST(RewardFunction, ScorerReadsWhatRewardTrainingWrites) {
  // RewardModelScorer scores [BOS] template(prompt) completion [EOS] at its last token, as
  // reward-model training lays pairs out; batching changes nothing; a model without a score
  // head is refused.
  Transformer rm(sort_policy_config());
  rm.init_weights(8);
  ensure_scalar_head(rm, 8);
  const std::vector<std::string> prompts = sort_prompts(5, 3);
  std::vector<std::string> answers;
  for (const std::string& p : prompts) answers.push_back(sorted_answer(p));
  answers[1] = "b a";
  answers[3] = "";
  RewardModelOptions one;
  one.batch = 1;
  RewardModelOptions all;
  all.batch = 16;
  RewardModelScorer a(rm, sort_tokenizer(), one), b(rm, sort_tokenizer(), all);
  const std::vector<double> sa = a.score(prompts, answers), sb = b.score(prompts, answers);
  std::vector<TokenizedExample> examples;
  for (size_t i = 0; i < prompts.size(); ++i) {
    examples.push_back(tokenize_example(sort_tokenizer(), sort_template(), prompts[i], answers[i],
                                        TruncationOptions{}, /*add_eos=*/true));
    EXPECT_EQ(examples.back().completion.back(), sort_tokenizer().eos_id());
  }
  const std::vector<double> want = score_examples(rm, examples, 3);
  ASSERT_EQ(sa.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_NEAR(sa[i], want[i], 1e-5);
    EXPECT_NEAR(sb[i], want[i], 1e-5);
  }
  EXPECT_NE(sa[0], sa[1]);
  EXPECT_THROW(a.score(prompts, {"x"}), Error);
  Transformer plain(sort_policy_config());
  plain.init_weights(1);
  EXPECT_THROW(RewardModelScorer(plain, sort_tokenizer(), one), Error);
  FunctionReward f([](const std::string& p, const std::string& c) { return is_correct(p, c); });
  EXPECT_EQ(f.score(prompts, answers), (std::vector<double>{1, 0, 1, 0, 1}));
}

}  // namespace
}  // namespace rlaif
