// Reference-free preference losses (ORPO, CPO, SimPO): known answers worked by hand from the
// equations of algorithms/reference_free_losses.h, gradients by finite differences, and settings
// refused.
#include <gtest/gtest.h>

#include <cmath>

#include "algorithms/reference_free_losses.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "runtime/philox.h"

namespace rlaif {
namespace {

Variable vec(std::vector<float> v, bool grad = false) {
  const auto n = static_cast<int64_t>(v.size());
  return Variable(Tensor::from_vector(v, {n}), grad);
}

float only(const Variable& v) {
  return v.data().to_vector<float>().at(0);
}

// log π(c) = −2, log π(r) = −4, so h = 2; β = 0.1, βh = 0.2.
float cpo_example(CpoLoss kind, double eps = 0.0, double gamma = 0.0) {
  return only(cpo_loss(vec({-2}), vec({-4}), 0.1, kind, eps, gamma));
}

TEST(CpoLoss, KnownAnswers) {
  EXPECT_NEAR(cpo_example(CpoLoss::sigmoid), 0.598139, 1e-5);  // −log σ(0.2)
  // ε = 0.1: −0.9·log σ(0.2) − 0.1·log σ(−0.2) = 0.9·0.598139 + 0.1·0.798139
  EXPECT_NEAR(cpo_example(CpoLoss::sigmoid, 0.1), 0.618139, 1e-5);
  EXPECT_NEAR(cpo_example(CpoLoss::hinge), 0.8, 1e-6);  // 1 − 0.2
  EXPECT_NEAR(cpo_example(CpoLoss::ipo), 9.0, 1e-5);    // (2 − 1/(2·0.1))² = (−3)²
  // SimPO, γ = 0.5: −log σ(0.2 − 0.5) = log(1 + e^0.3)
  EXPECT_NEAR(cpo_example(CpoLoss::simpo, 0.0, 0.5), 0.854355, 1e-5);
  // γ = 0 is the sigmoid loss on the same inputs.
  EXPECT_NEAR(cpo_example(CpoLoss::simpo), cpo_example(CpoLoss::sigmoid), 1e-7);
  // SimPO in TRL's form: −log σ(β·(h − γ/β)), here β = 2, γ = 1, h = 0.25 (averages −1.25 and
  // −1.5): −log σ(2·(0.25 − 0.5)) = −log σ(−0.5) = log(1 + e^0.5) = 0.974077.
  EXPECT_NEAR(only(cpo_loss(vec({-1.25}), vec({-1.5}), 2.0, CpoLoss::simpo, 0.0, 1.0)), 0.974077,
              1e-5);
}

TEST(OrpoLoss, KnownAnswers) {
  // Averages −0.5 and −1: log odds −0.5 − log(1 − e^−0.5) = 0.432752 and
  // −1 − log(1 − e^−1) = −0.541325, ratio 0.974077; −0.1·log σ(0.974077) = 0.1·0.320300.
  EXPECT_NEAR(only(orpo_log_odds_ratio(vec({-0.5}), vec({-1.0}))), 0.974077, 1e-5);
  EXPECT_NEAR(only(orpo_loss(vec({-0.5}), vec({-1.0}), 0.1)), 0.032030, 1e-6);
  // Equal answers: ratio 0, −λ·log σ(0) = λ·log 2.
  EXPECT_NEAR(only(orpo_loss(vec({-0.7}), vec({-0.7}), 0.25)), 0.25 * std::log(2.0), 1e-6);
  // The loss is per pair.
  const std::vector<float> two =
      orpo_loss(vec({-0.5, -1.0}), vec({-1.0, -0.5}), 1.0).data().to_vector<float>();
  EXPECT_NEAR(two[0], 0.320300, 1e-5);
  EXPECT_NEAR(two[1], 0.320300 + 0.974077, 1e-5);  // −log σ(−x) = −log σ(x) + x
}

std::vector<Variable> random_logps(uint64_t seed, float lo, float hi) {
  std::vector<Variable> out;
  for (uint64_t k = 0; k < 2; ++k) {
    std::vector<float> v;
    for (uint64_t i = 0; i < 6; ++i) v.push_back(lo + (hi - lo) * philox_uniform(seed + k, i));
    out.push_back(vec(v, true));
  }
  return out;
}

TEST(ReferenceFreeLosses, Gradchecks) {
  struct Case {
    CpoLoss kind;
    double beta, eps, gamma;
  };
  // Hinge: β = 0.05 and |h| ≤ 5 keep βh ≤ 0.25, away from the kink at 1.
  for (Case c : {Case{CpoLoss::sigmoid, 0.1, 0.0, 0.0}, Case{CpoLoss::sigmoid, 0.5, 0.2, 0.0},
                 Case{CpoLoss::hinge, 0.05, 0.0, 0.0}, Case{CpoLoss::ipo, 0.5, 0.0, 0.0},
                 Case{CpoLoss::simpo, 2.0, 0.0, 1.0}, Case{CpoLoss::simpo, 2.5, 0.1, 0.3}}) {
    auto inputs = random_logps(51, -6.0f, -1.0f);
    GradcheckResult r = gradcheck(
        [&](const std::vector<Variable>& x) {
          return cpo_loss(x[0], x[1], c.beta, c.kind, c.eps, c.gamma);
        },
        inputs);
    EXPECT_TRUE(r.ok) << cpo_loss_name(c.kind) << "\n" << r.report;
    EXPECT_EQ(r.checked, 12);
  }
  // ORPO on per-token averages in [−3, −0.05] (p up to 0.95: log(1 − p) well away from −∞).
  auto inputs = random_logps(61, -3.0f, -0.05f);
  GradcheckResult r =
      gradcheck([](const std::vector<Variable>& x) { return orpo_loss(x[0], x[1], 0.3); }, inputs);
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_EQ(r.checked, 12);
}

TEST(ReferenceFreeLosses, RejectBadSettings) {
  const Variable x = vec({-1});
  EXPECT_THROW(cpo_loss(x, x, 0.0, CpoLoss::sigmoid), Error);
  EXPECT_THROW(cpo_loss(x, x, 0.1, CpoLoss::sigmoid, 0.5), Error);
  EXPECT_THROW(cpo_loss(x, x, 0.1, CpoLoss::hinge, 0.1), Error);
  EXPECT_THROW(cpo_loss(x, x, 0.1, CpoLoss::ipo, 0.1), Error);
  EXPECT_THROW(cpo_loss(x, x, 0.1, CpoLoss::sigmoid, 0.0, 0.5), Error);  // γ is SimPO's
  EXPECT_NO_THROW(cpo_loss(x, x, 0.1, CpoLoss::simpo, 0.1, 0.5));
  EXPECT_THROW(cpo_loss(x, vec({-1, -2}), 0.1, CpoLoss::sigmoid), Error);
  EXPECT_THROW(orpo_loss(x, x, -0.1), Error);
  for (const char* name : {"sigmoid", "hinge", "ipo", "simpo"}) {
    EXPECT_STREQ(cpo_loss_name(parse_cpo_loss(name)), name);
  }
  EXPECT_THROW(parse_cpo_loss("orpo"), Error);
  EXPECT_TRUE(cpo_uses_average_logprobs(CpoLoss::simpo));
  EXPECT_FALSE(cpo_uses_average_logprobs(CpoLoss::hinge));
}

}  // namespace
}  // namespace rlaif
