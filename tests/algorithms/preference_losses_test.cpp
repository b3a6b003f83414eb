// Preference losses: known answers (computed by hand from the equations in
// algorithms/preference_losses.h), the DPO gradient, and gradchecks of every loss.
#include <gtest/gtest.h>

#include <cmath>

#include "algorithms/preference_losses.h"
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

// A worked example: log π(c) = −10, log π(r) = −12, log π_ref(c) = −11, log π_ref(r) = −11.5,
// β = 0.1, so h = 2 − 0.5 = 1.5 and βh = 0.15.
float dpo_example(DpoLoss kind, double eps = 0.0) {
  return only(dpo_loss(vec({-10}), vec({-12}), vec({-11}), vec({-11.5}), 0.1, kind, eps));
}

TEST(DpoLoss, KnownAnswers) {
  EXPECT_NEAR(dpo_example(DpoLoss::sigmoid), 0.620957, 1e-5);       // −log σ(0.15)
  EXPECT_NEAR(dpo_example(DpoLoss::sigmoid, 0.1), 0.635957, 1e-5);  // cDPO
  EXPECT_NEAR(dpo_example(DpoLoss::robust, 0.1), 0.602207, 1e-5);
  EXPECT_NEAR(dpo_example(DpoLoss::robust, 0.0), 0.620957, 1e-5);  // ε = 0: plain DPO
  EXPECT_NEAR(dpo_example(DpoLoss::ipo), 12.25, 1e-4);             // (1.5 − 5)²
  EXPECT_NEAR(dpo_example(DpoLoss::hinge), 0.85, 1e-5);            // 1 − 0.15
}

// The same example through the losses that see each side's log-ratio (a = 1, b = −0.5), worked
// by hand from the equations of algorithms/preference_losses.h.
TEST(DpoLoss, KnownAnswersOfThePerSideLosses) {
  EXPECT_NEAR(dpo_example(DpoLoss::sigmoid_norm), 0.620957, 1e-5);  // sigmoid on its inputs
  EXPECT_NEAR(dpo_example(DpoLoss::sppo_hard), 36.25, 1e-4);        // (1 − 5)² + (−0.5 + 5)²
  // −log σ(0.1) − ½ log σ(−0.1) − ½ log σ(0.05)
  EXPECT_NEAR(dpo_example(DpoLoss::nca_pair), 1.350825, 1e-5);
  // σ(0.15)(log σ(0.15) − log 0.999) + σ(−0.15)(log σ(−0.15) − log 0.001): ε = 0 means 1e-3
  EXPECT_NEAR(dpo_example(DpoLoss::exo_pair), 2.505517, 1e-5);
  EXPECT_NEAR(dpo_example(DpoLoss::exo_pair, 1e-3), 2.505517, 1e-5);
  EXPECT_NEAR(dpo_example(DpoLoss::exo_pair, 0.1), 0.431388, 1e-5);
  EXPECT_NEAR(dpo_example(DpoLoss::apo_zero), 0.962523, 1e-5);  // 1 − σ(0.1) + σ(−0.05)
  EXPECT_NEAR(dpo_example(DpoLoss::apo_down), 0.987549, 1e-5);  // σ(0.1) + 1 − σ(0.15)
  // One pair: δ = (0.1·1 + 0.1·(−0.5))/2 = 0.025; −log σ(0.1 − δ) − log σ(−(−0.05 − δ)).
  EXPECT_NEAR(dpo_example(DpoLoss::bco_pair), 1.312700, 1e-5);
  // Two pairs share δ: βa = 0.1, 0.3 and βb = −0.05, 0.05 give δ = 0.1, so the second pair's
  // loss is −log σ(0.2) − log σ(0.05).
  const std::vector<float> two = dpo_loss(vec({-10, -7}), vec({-12, -9}), vec({-11, -10}),
                                          vec({-11.5, -9.5}), 0.1, DpoLoss::bco_pair)
                                     .data()
                                     .to_vector<float>();
  EXPECT_NEAR(two[1], std::log1p(std::exp(-0.2)) + std::log1p(std::exp(-0.05)), 1e-5);
  EXPECT_TRUE(dpo_uses_average_logprobs(DpoLoss::sigmoid_norm));
  EXPECT_FALSE(dpo_uses_average_logprobs(DpoLoss::nca_pair));
}

TEST(DpoLoss, PerSideLossesWithThePolicyAtTheReference) {
  Variable c = vec({-10, -3.5}), r = vec({-12, -7});
  auto at_start = [&](DpoLoss kind, double beta) {
    return dpo_loss(c, r, c, r, beta, kind).data().to_vector<float>();
  };
  for (float l : at_start(DpoLoss::nca_pair, 0.1)) EXPECT_NEAR(l, 2 * std::log(2.0), 1e-6);
  for (float l : at_start(DpoLoss::bco_pair, 0.1)) EXPECT_NEAR(l, 2 * std::log(2.0), 1e-6);
  for (float l : at_start(DpoLoss::apo_zero, 0.1)) EXPECT_NEAR(l, 1.0, 1e-6);
  for (float l : at_start(DpoLoss::apo_down, 0.1)) EXPECT_NEAR(l, 1.0, 1e-6);
  for (float l : at_start(DpoLoss::sppo_hard, 0.5)) EXPECT_NEAR(l, 2.0, 1e-6);  // 2·(1/(2β))²
  const double exo =
      0.5 * (std::log(0.5) - std::log(0.999)) + 0.5 * (std::log(0.5) - std::log(1e-3));
  for (float l : at_start(DpoLoss::exo_pair, 0.1)) EXPECT_NEAR(l, exo, 1e-5);
}

TEST(DpoLoss, GradientOfTheSigmoidLoss) {
  // ∂L/∂log π(c) = −β·σ(−βh) = −0.1·σ(−0.15); the rejected side and the reference get the
  // opposite signs.
  Variable pc = vec({-10}, true), pr = vec({-12}, true), rc = vec({-11}, true),
           rr = vec({-11.5}, true);
  dpo_loss(pc, pr, rc, rr, 0.1, DpoLoss::sigmoid).backward(Tensor::from_vector<float>({1}, {1}));
  EXPECT_NEAR(only(Variable(pc.grad())), -0.046257, 1e-6);
  EXPECT_NEAR(only(Variable(pr.grad())), 0.046257, 1e-6);
  EXPECT_NEAR(only(Variable(rc.grad())), 0.046257, 1e-6);
  EXPECT_NEAR(only(Variable(rr.grad())), -0.046257, 1e-6);
}

TEST(DpoLoss, PolicyEqualToReferenceGivesLn2) {
  Variable c = vec({-10, -3.5, -40}), r = vec({-12, -7, -2});
  for (double beta : {0.01, 0.1, 1.0}) {
    for (float l : dpo_loss(c, r, c, r, beta, DpoLoss::sigmoid).data().to_vector<float>()) {
      EXPECT_NEAR(l, std::log(2.0), 1e-6) << "beta " << beta;
    }
  }
}

TEST(DpoLoss, PerPairLossesOfABatch) {
  // The loss is per pair: pair 1 is pair 0 with the sides swapped, so h = −1.5.
  Variable l = dpo_loss(vec({-10, -12}), vec({-12, -10}), vec({-11, -11.5}), vec({-11.5, -11}), 0.1,
                        DpoLoss::sigmoid);
  std::vector<float> v = l.data().to_vector<float>();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_NEAR(v[0], 0.620957, 1e-5);
  EXPECT_NEAR(v[1], std::log1p(std::exp(0.15)), 1e-5);  // −log σ(−0.15)
}

TEST(DpoLoss, RejectsBadSettings) {
  Variable x = vec({-1});
  EXPECT_THROW(dpo_loss(x, x, x, x, 0.0, DpoLoss::sigmoid), Error);
  EXPECT_THROW(dpo_loss(x, x, x, x, 0.1, DpoLoss::sigmoid, 0.5), Error);
  EXPECT_THROW(dpo_loss(x, x, x, x, 0.1, DpoLoss::ipo, 0.1), Error);
  EXPECT_THROW(dpo_loss(x, x, x, x, 0.1, DpoLoss::hinge, 0.1), Error);
  EXPECT_THROW(dpo_loss(x, vec({-1, -2}), x, x, 0.1, DpoLoss::sigmoid), Error);
  EXPECT_EQ(parse_dpo_loss("robust"), DpoLoss::robust);
  EXPECT_EQ(parse_dpo_loss("ipo"), DpoLoss::ipo);
  EXPECT_THROW(parse_dpo_loss("kto"), Error);
  EXPECT_THROW(dpo_loss(x, x, x, x, 0.1, DpoLoss::nca_pair, 0.1), Error);
  EXPECT_NO_THROW(dpo_loss(x, x, x, x, 0.1, DpoLoss::exo_pair, 0.1));
  for (const char* name :
       {"sigmoid_norm", "sppo_hard", "nca_pair", "exo_pair", "apo_zero", "apo_down", "bco_pair"}) {
    EXPECT_STREQ(dpo_loss_name(parse_dpo_loss(name)), name);
  }
}

TEST(BradleyTerryLoss, KnownAnswers) {
  EXPECT_NEAR(only(bradley_terry_loss(vec({1}), vec({-0.5}))), 0.201413, 1e-5);  // −log σ(1.5)
  Tensor margin = Tensor::from_vector<float>({1}, {1});
  EXPECT_NEAR(only(bradley_terry_loss(vec({1}), vec({-0.5}), margin)), 0.474077, 1e-5);
  // Centring adds C·(r_c + r_r)² = 0.01·0.25.
  EXPECT_NEAR(only(bradley_terry_loss(vec({1}), vec({-0.5}), Tensor(), 0.01)), 0.203913, 1e-5);
  // The gradient is −σ(−1.5) on r_c and +σ(−1.5) on r_r.
  Variable c = vec({1}, true), r = vec({-0.5}, true);
  bradley_terry_loss(c, r).backward(Tensor::from_vector<float>({1}, {1}));
  EXPECT_NEAR(only(Variable(c.grad())), -0.182426, 1e-6);
  EXPECT_NEAR(only(Variable(r.grad())), 0.182426, 1e-6);
}

// Gradchecks on random pairs. Log-probs in [−30, −1]; hinge inputs keep βh away from its kink
// at 1 (β = 0.1, |h| ≤ 5 gives βh ≤ 0.5).
std::vector<Variable> random_logps(uint64_t seed, float lo, float hi) {
  std::vector<Variable> out;
  for (uint64_t k = 0; k < 4; ++k) {
    std::vector<float> v;
    for (uint64_t i = 0; i < 6; ++i) v.push_back(lo + (hi - lo) * philox_uniform(seed + k, i));
    out.push_back(vec(v, true));
  }
  return out;
}

TEST(DpoLoss, Gradchecks) {
  struct Case {
    DpoLoss kind;
    double eps;
  };
  for (Case c :
       {Case{DpoLoss::sigmoid, 0.0}, Case{DpoLoss::sigmoid, 0.2}, Case{DpoLoss::robust, 0.2},
        Case{DpoLoss::ipo, 0.0}, Case{DpoLoss::hinge, 0.0}, Case{DpoLoss::sigmoid_norm, 0.0},
        Case{DpoLoss::sppo_hard, 0.0}, Case{DpoLoss::nca_pair, 0.0}, Case{DpoLoss::exo_pair, 0.0},
        Case{DpoLoss::exo_pair, 0.2}, Case{DpoLoss::apo_zero, 0.0}, Case{DpoLoss::apo_down, 0.0}}) {
    auto inputs = random_logps(11, -6.0f, -1.0f);
    auto f = [&](const std::vector<Variable>& x) {
      return dpo_loss(x[0], x[1], x[2], x[3], 0.1, c.kind, c.eps);
    };
    GradcheckResult r = gradcheck(f, inputs);
    EXPECT_TRUE(r.ok) << dpo_loss_name(c.kind) << " eps " << c.eps << "\n" << r.report;
    EXPECT_EQ(r.checked, 24);
  }
  // bco_pair's δ is a batch statistic without gradient: checked with δ held fixed.
  {
    auto bco_inputs = random_logps(12, -6.0f, -1.0f);
    GradcheckResult r = gradcheck(
        [](const std::vector<Variable>& x) {
          return bco_pair_loss(x[0], x[1], x[2], x[3], 0.1, 0.07);
        },
        bco_inputs);
    EXPECT_TRUE(r.ok) << "bco_pair\n" << r.report;
  }
  // Large summed log-probs with a large β: log σ must stay stable far into its tails.
  auto inputs = random_logps(21, -30.0f, -1.0f);
  GradcheckResult r = gradcheck(
      [](const std::vector<Variable>& x) {
        return dpo_loss(x[0], x[1], x[2], x[3], 2.0, DpoLoss::sigmoid, 0.1);
      },
      inputs);
  EXPECT_TRUE(r.ok) << r.report;
}

TEST(BradleyTerryLoss, Gradcheck) {
  auto inputs = random_logps(31, -2.0f, 2.0f);
  inputs.resize(2);
  Tensor margin = Tensor::from_vector<float>({0, 1, 0.5, 2, 0, 1}, {6});
  GradcheckResult r = gradcheck(
      [&](const std::vector<Variable>& x) { return bradley_terry_loss(x[0], x[1], margin, 0.05); },
      inputs);
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_EQ(r.checked, 12);
}

}  // namespace
}  // namespace rlaif
