// The preference metrics of algorithms/preference_metrics.h against values worked by hand, and
// the two loops the preference tasks share: a micro-batch's indices on each rank, and held-out
// evaluation in batches.
#include "algorithms/preference_metrics.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace rlaif {
namespace {

double metric(const Metrics& m, const std::string& name) {
  for (const auto& [k, v] : m) {
    if (k == name) return v;
  }
  ADD_FAILURE() << "no metric " << name;
  return 0.0;
}

TEST(PreferenceMetrics, MeansOfTwoPairsWorkedByHand) {
  // Pair 1: loss 0.25, rewards (ρ_c, ρ_r) = (1, 0), log-probs (−2, −3).
  // Pair 2: loss 0.75, rewards (0.5, 1), log-probs (−4, −1).
  PreferenceMetricSums sums;
  sums.add_pair(0.25, 1.0, 0.0, -2.0, -3.0);
  sums.add_pair(0.75, 0.5, 1.0, -4.0, -1.0);
  sums.pairs = 2;
  EXPECT_EQ(sums.count(), 2);
  EXPECT_EQ(sums.loss, 1.0);  // 0.25 + 0.75
  const Metrics m = sums.means("");
  ASSERT_EQ(m.size(), 6u);                          // no nll_loss, no extras
  EXPECT_EQ(metric(m, "rewards/chosen"), 0.75);     // (1 + 0.5) / 2
  EXPECT_EQ(metric(m, "rewards/rejected"), 0.5);    // (0 + 1) / 2
  EXPECT_EQ(metric(m, "rewards/accuracies"), 0.5);  // 1 > 0 yes, 0.5 > 1 no
  EXPECT_EQ(metric(m, "rewards/margins"), 0.25);    // (1 − 0 + 0.5 − 1) / 2
  EXPECT_EQ(metric(m, "logps/chosen"), -3.0);       // (−2 − 4) / 2
  EXPECT_EQ(metric(m, "logps/rejected"), -2.0);     // (−3 − 1) / 2

  // nll_loss and the extras come after, in order, with the prefix.
  sums.has_nll = true;
  sums.nll = 3.0;
  sums.extra = {{"log_odds_ratio", -1.0}, {"log_odds_chosen", 5.0}};
  const Metrics v = sums.means("val_");
  ASSERT_EQ(v.size(), 9u);
  EXPECT_EQ(v[0].first, "val_rewards/chosen");
  EXPECT_EQ(v[6].first, "val_nll_loss");
  EXPECT_EQ(v[6].second, 1.5);
  EXPECT_EQ(v[7].first, "val_log_odds_ratio");
  EXPECT_EQ(v[7].second, -0.5);
  EXPECT_EQ(v[8].first, "val_log_odds_chosen");
  EXPECT_EQ(v[8].second, 2.5);
}

TEST(PreferenceMetrics, NoPairsGiveZeroMeans) {
  const Metrics m = PreferenceMetricSums{}.means("");
  for (const auto& [name, value] : m) EXPECT_EQ(value, 0.0) << name;
}

TEST(PreferenceMetrics, MicroBatchIndicesAreTheRanksShareOfTheStepsMicroBatch) {
  // Step 2, micro-batch 1 of 3 per step: the order's micro-batch 2·3 + 1 = 7, of 4 pairs, split
  // over 2 ranks in order.
  const PairOrder order(10, 3);
  const std::vector<int64_t> whole = order.batch(7, 4);
  const std::vector<int64_t> first = micro_batch_indices(order, 2, 1, 3, 4, 0, 2);
  const std::vector<int64_t> second = micro_batch_indices(order, 2, 1, 3, 4, 1, 2);
  EXPECT_EQ(first, (std::vector<int64_t>{whole[0], whole[1]}));
  EXPECT_EQ(second, (std::vector<int64_t>{whole[2], whole[3]}));
  EXPECT_EQ(micro_batch_indices(order, 2, 1, 3, 4, 0, 1), whole);
}

struct CountingSums {
  double loss = 0;
  int64_t examples = 0;
  int64_t count() const { return examples; }
  Metrics means(const std::string& prefix) const {
    return {{prefix + "examples", static_cast<double>(examples)}};
  }
};

TEST(PreferenceMetrics, EvaluationWalksEveryExampleOnceInBatches) {
  // 5 examples in batches of 2: [0, 1], [2, 3], [4]; each adds its index to the loss, so
  // val_loss = (0 + 1 + 2 + 3 + 4) / 5 = 2.
  std::vector<std::vector<int64_t>> seen;
  const Metrics m = evaluate_in_batches<CountingSums>(
      5, 2, [&](const std::vector<int64_t>& indices, CountingSums& sums, int64_t& tokens) {
        seen.push_back(indices);
        for (int64_t i : indices) sums.loss += static_cast<double>(i);
        sums.examples += static_cast<int64_t>(indices.size());
        tokens += 1;
      });
  EXPECT_EQ(seen, (std::vector<std::vector<int64_t>>{{0, 1}, {2, 3}, {4}}));
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].first, "val_loss");
  EXPECT_EQ(m[0].second, 2.0);
  EXPECT_EQ(m[1].first, "val_examples");
  EXPECT_EQ(m[1].second, 5.0);
  EXPECT_TRUE(evaluate_in_batches<CountingSums>(0, 2, [](auto&&...) {
                ADD_FAILURE() << "no batch to score";
              }).empty());
}

}  // namespace
}  // namespace rlaif
