// PPO's logged metrics (algorithms/ppo_metrics.h) against values worked by hand: running means,
// the mean over one rank, and TRL's names for the same values.
#include "algorithms/ppo_metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace rlaif {
namespace {

TEST(PpoMetrics, RunningMeansKeepFirstSeenOrder) {
  MeanMetrics m;
  m.add("b", 1.0);
  m.add("a", 4.0);
  m.add("b", 2.0);  // b: (1 + 2) / 2 = 1.5
  const Metrics means = m.means();
  ASSERT_EQ(means.size(), 2u);
  EXPECT_EQ(means[0], (std::pair<std::string, double>{"b", 1.5}));
  EXPECT_EQ(means[1], (std::pair<std::string, double>{"a", 4.0}));
}

TEST(PpoMetrics, OneRankKeepsItsValues) {
  SingleProcessCommunicator alone;
  double x = 0.1, y = -3.0;
  rank_mean(alone, {&x, &y});
  EXPECT_EQ(x, 0.1);  // not rounded to f32: nothing to average
  EXPECT_EQ(y, -3.0);
}

TEST(PpoMetrics, TrlNamesRepeatTheValues) {
  // A rollout of 8 sequences: score 0.5, non-score reward −0.125, per-token entropy 0.25 over
  // responses of 6 tokens on average, 3/4 of them ending with EOS.
  Metrics values = {{"score", 0.5},        {"non_score_reward", -0.125}, {"kl", 1.25},
                    {"entropy", 0.25},     {"response_length", 6},       {"eos_fraction", 0.75},
                    {"policy_loss", -0.5}, {"clip_fraction", 0.125}};
  add_trl_names(values, 8, AdvantageKind::gae);
  EXPECT_EQ(metric_or_zero(values, "objective/rlhf_reward"), 0.375);  // 0.5 − 0.125
  EXPECT_EQ(metric_or_zero(values, "objective/entropy"), 1.5);        // 0.25 × 6 per response
  EXPECT_EQ(metric_or_zero(values, "objective/kl"), 1.25);
  EXPECT_EQ(metric_or_zero(values, "objective/scores"), 0.5);
  EXPECT_EQ(metric_or_zero(values, "loss/policy_avg"), -0.5);
  EXPECT_EQ(metric_or_zero(values, "policy/clipfrac_avg"), 0.125);
  EXPECT_EQ(metric_or_zero(values, "val/num_eos_tokens"), 6.0);  // 0.75 × 8
  EXPECT_EQ(metric_or_zero(values, "reward"), 0.0);              // grpo's names only for grpo
  EXPECT_EQ(metric_or_zero(values, "score"), 0.5);               // the short names stay

  Metrics grpo = {{"score", 2.0}, {"response_length", 3}, {"clip_fraction", 0.5}};
  add_trl_names(grpo, 4, AdvantageKind::grpo);
  EXPECT_EQ(metric_or_zero(grpo, "reward"), 2.0);
  EXPECT_EQ(metric_or_zero(grpo, "completions/mean_length"), 3.0);
  EXPECT_EQ(metric_or_zero(grpo, "clip_ratio/region_mean"), 0.5);
  EXPECT_EQ(metric_or_zero(grpo, "objective/rlhf_reward"), 2.0);  // no non-score reward
}

}  // namespace
}  // namespace rlaif
