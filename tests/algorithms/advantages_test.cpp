// The advantage estimators of algorithms/advantages.h against known answers worked by hand: GAE,
// whitening, RLOO's leave-one-out baseline, GRPO's group normalisation (and Dr. GRPO's centring).
#include <gtest/gtest.h>

#include <cmath>

#include "algorithms/advantages.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

TEST(PpoMath, GaeKnownAnswer) {
  GaeResult g = gae({0, 0, 1}, {0.5, 0.6, 0.7}, 1.0, 0.95);
  ASSERT_EQ(g.advantages.size(), 3u);
  EXPECT_NEAR(g.advantages[0], 0.46575, 1e-12);
  EXPECT_NEAR(g.advantages[1], 0.385, 1e-12);
  EXPECT_NEAR(g.advantages[2], 0.3, 1e-12);
  EXPECT_NEAR(g.returns[0], 0.96575, 1e-12);
  EXPECT_NEAR(g.returns[2], 1.0, 1e-12);
  // γ = 0.5, λ = 0: one-step TD errors δ_t = r_t + 0.5·V_{t+1} − V_t.
  GaeResult td = gae({1, 2}, {0.5, 1.0}, 0.5, 0.0);
  EXPECT_NEAR(td.advantages[0], 1.0 + 0.5 - 0.5, 1e-12);
  EXPECT_NEAR(td.advantages[1], 2.0 - 1.0, 1e-12);
  EXPECT_THROW(gae({1, 2}, {1}, 1, 1), Error);
}

TEST(PpoMath, WhitenAndGroupAdvantages) {
  std::vector<double> w = whiten({1, 2, 3, 4});
  double mean = 0, var = 0;
  for (double x : w) mean += x / 4;
  for (double x : w) var += (x - mean) * (x - mean) / 3;  // unbiased
  EXPECT_NEAR(mean, 0.0, 1e-12);
  EXPECT_NEAR(var, 1.0, 1e-6);
  std::vector<double> kept = whiten({1, 2, 3, 4}, /*shift_mean=*/false);
  EXPECT_NEAR(kept[0] + kept[1] + kept[2] + kept[3], 10.0, 1e-9);  // the mean stays 2.5
  std::vector<double> masked = whiten({1, 100, 3}, {1, 0, 1});
  EXPECT_EQ(masked[1], 100.0);
  EXPECT_NEAR(masked[0], -1.0 / std::sqrt(2.0), 1e-6);  // (1 − 2) / √2

  // RLOO: baseline = the mean of the others.
  std::vector<double> r = rloo_advantages({1, 0, 0, 3, 6, 0}, 3);
  EXPECT_NEAR(r[0], 1 - 0.0, 1e-12);
  EXPECT_NEAR(r[1], 0 - 0.5, 1e-12);
  EXPECT_NEAR(r[3], 3 - 3.0, 1e-12);
  EXPECT_NEAR(r[4], 6 - 1.5, 1e-12);
  EXPECT_NEAR(r[5], 0 - 4.5, 1e-12);
  // GRPO: (r − mean) / (std + eps), std unbiased: {1, 0} → ±0.5/0.70711.
  std::vector<double> g = grpo_advantages({1, 0, 2, 2}, 2);
  EXPECT_NEAR(g[0], 0.5 / (std::sqrt(0.5) + 1e-4), 1e-9);
  EXPECT_NEAR(g[1], -g[0], 1e-12);
  EXPECT_EQ(g[2], 0.0);  // a group with one score has no signal
  EXPECT_THROW(rloo_advantages({1, 2, 3}, 2), Error);
  EXPECT_THROW(grpo_advantages({1, 2}, 1), Error);
  // Dr. GRPO: centred only: {3, 0, 0} → 2, −1, −1 (GRPO's would be 2/√3, −1/√3, −1/√3);
  // {1, 1, 1} → 0.
  std::vector<double> d = grpo_advantages({3, 0, 0, 1, 1, 1}, 3, 1e-4, /*scale_by_std=*/false);
  EXPECT_NEAR(d[0], 2.0, 1e-12);
  EXPECT_NEAR(d[1], -1.0, 1e-12);
  EXPECT_NEAR(d[2], -1.0, 1e-12);
  EXPECT_NEAR(d[3], 0.0, 1e-12);
  // Two of three groups scored alike: {1, 1}, {0, 2}, {5, 5}.
  EXPECT_NEAR(zero_std_group_fraction({1, 1, 0, 2, 5, 5}, 2), 2.0 / 3, 1e-12);
  EXPECT_EQ(zero_std_group_fraction({0, 1, 2, 3}, 2), 0.0);
}

}  // namespace
}  // namespace rlaif
