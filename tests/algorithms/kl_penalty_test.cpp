// The KL estimators and the adaptive KL coefficient of algorithms/kl_penalty.h against known
// answers worked by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "algorithms/kl_penalty.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

TEST(PpoMath, KlEstimatorsKnownAnswers) {
  EXPECT_NEAR(kl_k1(-1.0, -1.2), 0.2, 1e-12);
  EXPECT_NEAR(kl_k3(-1.0, -1.2), 0.0187308, 1e-7);
  EXPECT_NEAR(kl_k3(-1.0, -1.2), std::exp(-0.2) - 1.0 + 0.2, 1e-15);
  EXPECT_EQ(kl_k3(-0.7, -0.7), 0.0);
  EXPECT_GE(kl_k3(-3.0, -0.1), 0.0);  // k3 is never negative; k1 can be
  EXPECT_LT(kl_k1(-3.0, -0.1), 0.0);
  EXPECT_EQ(parse_kl_estimator("k3"), KlEstimator::k3);
  EXPECT_THROW(parse_kl_estimator("k2"), Error);
}

TEST(PpoMath, AdaptiveKlController) {
  AdaptiveKlController c(0.1, /*target=*/6.0, /*horizon=*/10000);
  c.update(12.0, 64);  // KL twice the target: e clipped to 0.2
  EXPECT_NEAR(c.value(), 0.1 * (1 + 0.2 * 64 / 10000.0), 1e-15);
  c.update(5.4, 100);  // e = 5.4/6 − 1 = −0.1
  EXPECT_NEAR(c.value(), 0.1 * (1 + 0.2 * 64 / 10000.0) * (1 - 0.1 * 100 / 10000.0), 1e-15);
  EXPECT_THROW(AdaptiveKlController(0.1, 0.0), Error);
}

}  // namespace
}  // namespace rlaif
