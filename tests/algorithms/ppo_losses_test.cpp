// The losses of algorithms/ppo_losses.h (PPO's clipped policy loss, the clipped value loss,
// GRPO's k3 KL loss, the token aggregations) against known answers worked by hand, and their
// gradients checked by finite differences through a tiny transformer.
#include <gtest/gtest.h>

#include <cmath>

#include "algorithms/ppo_losses.h"
#include "algorithms/ppo_rollout.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tests/model/model_test_util.h"
#include "tests/support/tiny_sequences.h"

namespace rlaif {
namespace {

using test::tiny_sequences;
Tensor row(const std::vector<float>& v) {
  return Tensor::from_vector(v, {1, static_cast<int64_t>(v.size())});
}

// ---- Known answers --------------------------------------------------------------------------

TEST(PpoMath, PolicyLossKnownAnswers) {
  // A = 2, ρ = 1.5: max(−3, −2·1.2) = −2.4 (clipped: the gain is capped at 1+ε).
  {
    Variable logp(row({static_cast<float>(std::log(1.5))}), true);
    PolicyLoss l = ppo_policy_loss(logp, row({0.0f}), row({2.0f}), row({1.0f}), 0.2);
    EXPECT_NEAR(l.loss.data().item(), -2.4, 1e-6);
    EXPECT_EQ(l.clip_fraction, 1.0);
    EXPECT_NEAR(l.ratio_mean, 1.5, 1e-6);
    EXPECT_NEAR(l.approx_kl, 0.5 * std::log(1.5) * std::log(1.5), 1e-6);
    l.loss.backward();
    EXPECT_EQ(logp.grad().item(), 0.0f);  // clipped: no gradient
  }
  // A = −2, ρ = 0.5: max(1, 2·0.8) = 1.6.
  {
    Variable logp(row({static_cast<float>(std::log(0.5))}), true);
    PolicyLoss l = ppo_policy_loss(logp, row({0.0f}), row({-2.0f}), row({1.0f}), 0.2);
    EXPECT_NEAR(l.loss.data().item(), 1.6, 1e-6);
    EXPECT_EQ(l.clip_fraction, 1.0);
  }
  // Both in one batch, plus an unclipped token and a masked one: the mean of −2.4, 1.6 and
  // −A·ρ = −1·1.1 = −1.1; the masked token (ratio 5) counts for nothing.
  {
    Variable logp(Tensor::from_vector<float>(
                      {std::log(1.5f), std::log(0.5f), std::log(1.1f), std::log(5.0f)}, {2, 2}),
                  true);
    PolicyLoss l = ppo_policy_loss(logp, Tensor::zeros({2, 2}, DType::f32),
                                   Tensor::from_vector<float>({2, -2, 1, 7}, {2, 2}),
                                   Tensor::from_vector<float>({1, 1, 1, 0}, {2, 2}), 0.2);
    EXPECT_NEAR(l.loss.data().item(), (-2.4 + 1.6 - 1.1) / 3.0, 1e-6);
    EXPECT_NEAR(l.clip_fraction, 2.0 / 3.0, 1e-12);
    l.loss.backward();
    // Only the unclipped token has a gradient: d(−A·e^{lp})/dlp / 3 = −1.1 / 3.
    std::vector<float> g = logp.grad().to_vector<float>();
    EXPECT_EQ(g[0], 0.0f);
    EXPECT_EQ(g[1], 0.0f);
    EXPECT_NEAR(g[2], -1.1 / 3.0, 1e-6);
    EXPECT_EQ(g[3], 0.0f);
  }
}

TEST(PpoMath, ValueLossKnownAnswer) {
  // V_old = 0, V = 0.5, R = 1, ε_v = 0.2: 0.5·max((0.5−1)², (0.2−1)²) = 0.32.
  Variable v(row({0.5f}), true);
  ValueLoss l = ppo_value_loss(v, row({0.0f}), row({1.0f}), row({1.0f}), 0.2);
  EXPECT_NEAR(l.loss.data().item(), 0.32, 1e-6);
  EXPECT_EQ(l.clip_fraction, 1.0);
  l.loss.backward();
  EXPECT_EQ(v.grad().item(), 0.0f);  // the clipped error wins, and it does not move with V
  // Unclipped case: V = 0.1 inside the range: 0.5·(0.9)² = 0.405, gradient V − R = −0.9.
  Variable w(row({0.1f}), true);
  ValueLoss m = ppo_value_loss(w, row({0.0f}), row({1.0f}), row({1.0f}), 0.2);
  EXPECT_NEAR(m.loss.data().item(), 0.405, 1e-6);
  EXPECT_EQ(m.clip_fraction, 0.0);
  m.loss.backward();
  EXPECT_NEAR(w.grad().item(), -0.9, 1e-6);
}

TEST(PpoMath, ClipHigherLetsPositiveAdvantagesGrowFurther) {
  // ε_low = 0.2, ε_high = 0.28. A = 2, ρ = 1.5: max(−3, −2·1.28) = −2.56.
  Variable up(row({static_cast<float>(std::log(1.5))}), true);
  EXPECT_NEAR(
      ppo_policy_loss(up, row({0.0f}), row({2.0f}), row({1.0f}), 0.2, 0.28).loss.data().item(),
      -2.56, 1e-6);
  // The lower side is unchanged: A = −2, ρ = 0.5 → max(1, 2·0.8) = 1.6.
  Variable down(row({static_cast<float>(std::log(0.5))}), true);
  EXPECT_NEAR(
      ppo_policy_loss(down, row({0.0f}), row({-2.0f}), row({1.0f}), 0.2, 0.28).loss.data().item(),
      1.6, 1e-6);
  // Inside (1 − 0.2, 1 + 0.28) nothing is clipped: ρ = 1.25, A = 2 → −2.5 with its gradient.
  Variable inside(row({static_cast<float>(std::log(1.25))}), true);
  PolicyLoss l = ppo_policy_loss(inside, row({0.0f}), row({2.0f}), row({1.0f}), 0.2, 0.28);
  EXPECT_NEAR(l.loss.data().item(), -2.5, 1e-6);
  EXPECT_EQ(l.clip_fraction, 0.0);
  EXPECT_THROW(ppo_policy_loss(inside, row({0.0f}), row({2.0f}), row({1.0f}), 0.2, 0.0), Error);
}

TEST(PpoMath, LossAggregationKnownAnswers) {
  // Two responses of 3 and 1 tokens, token terms {1, 1, 1} and {4}, L_max = 4.
  const std::vector<int64_t> lengths = {3, 1};
  const Tensor terms =
      Tensor::from_vector(std::vector<float>{1, 1, 1, 4, 0, 0}, {2, 3});  // row 2: one token
  const std::vector<float> mask = {1, 1, 1, 1, 0, 0};
  auto loss = [&](LossAggregation kind) {
    const std::vector<double> w = aggregation_weights(kind, lengths, 4);
    std::vector<float> wt(mask.size());
    for (size_t i = 0; i < wt.size(); ++i) wt[i] = mask[i] * static_cast<float>(w[i / 3]);
    return weighted_token_sum(Variable(terms), Tensor::from_vector(wt, {2, 3})).data().item();
  };
  EXPECT_NEAR(loss(LossAggregation::dapo), 7.0 / 4, 1e-6);     // (1 + 1 + 1 + 4) / 4 tokens
  EXPECT_NEAR(loss(LossAggregation::grpo), 2.5, 1e-6);         // (3/3 + 4/1) / 2 responses
  EXPECT_NEAR(loss(LossAggregation::dr_grpo), 7.0 / 8, 1e-6);  // 7 / (2 responses × 4)
  // dapo's weights are the token mean every loss takes without weights.
  Variable logp(Tensor::from_vector(std::vector<float>{0.1f, -0.2f, 0.3f, 0.05f, 0, 0}, {2, 3}),
                true);
  const Tensor m = Tensor::from_vector(mask, {2, 3});
  const Tensor adv = Tensor::from_vector(std::vector<float>{1, -1, 2, 0.5f, 0, 0}, {2, 3});
  const Tensor dapo = Tensor::from_vector(std::vector<float>{.25f, .25f, .25f, .25f, 0, 0}, {2, 3});
  const Tensor zero = Tensor::zeros({2, 3}, DType::f32);
  EXPECT_NEAR(ppo_policy_loss(logp, zero, adv, m, 0.2, -1, dapo).loss.data().item(),
              ppo_policy_loss(logp, zero, adv, m, 0.2).loss.data().item(), 1e-7);
  EXPECT_EQ(parse_loss_aggregation("dr_grpo"), LossAggregation::dr_grpo);
  EXPECT_STREQ(loss_aggregation_name(LossAggregation::grpo), "grpo");
  EXPECT_THROW(parse_loss_aggregation("bnpo"), Error);
  EXPECT_THROW(aggregation_weights(LossAggregation::dr_grpo, {5}, 4), Error);  // longer than L_max
}

// ---- Gradients through a tiny model -----------------------------------------------------------

// The leaves to check: the parameters the loss reaches first and last (the head/embedding and
// the first layer's attention query), kept small so the check stays quick.
Variable first_query(const Transformer& m) {
  for (auto& [name, v] : m.parameters()) {
    if (name.find("q_proj.weight") != std::string::npos) return v;
  }
  throw Error("no q_proj");
}
std::vector<Variable> checked_params(const Transformer& m) {
  return {m.parameter(m.config().is_gpt2() ? "transformer.wte.weight" : "lm_head.weight"),
          first_query(m)};
}

// Offsets of log π_old from the current log π: 0 (ρ = 1, inside the trust region), ±0.6 (ρ far
// outside it on either side), so no token sits near a kink of the clip.
Tensor offset_tensor(const Tensor& base, const Tensor& mask) {
  std::vector<float> b = base.to_vector<float>(), m = mask.to_vector<float>();
  const float offsets[] = {0.0f, 0.6f, -0.6f};
  for (size_t i = 0; i < b.size(); ++i) b[i] += m[i] * offsets[i % 3];
  return Tensor::from_vector(b, base.shape());
}

TEST(PpoMath, PolicyLossGradcheckThroughTinyModel) {
  for (ModelConfig cfg : {testing::tiny_gpt2(), testing::tiny_llama()}) {
    Transformer m(cfg);
    m.init_weights(3);
    m.set_requires_grad(true);
    SequenceBatch batch = tiny_sequences();
    const Tensor mask = batch.completion_mask;
    Tensor old;
    {
      NoGradGuard g;
      old = offset_tensor(response_logprobs(m, batch, 0.7).data(), mask);
    }
    std::vector<float> adv(static_cast<size_t>(mask.numel()));
    for (size_t i = 0; i < adv.size(); ++i) adv[i] = (i % 2 ? 1.3f : -0.8f);
    Tensor A = Tensor::from_vector(adv, mask.shape());
    auto f = [&](const std::vector<Variable>&) {
      return ppo_policy_loss(response_logprobs(m, batch, 0.7), old, A, mask, 0.2).loss;
    };
    GradcheckResult r = gradcheck(f, checked_params(m));
    EXPECT_TRUE(r.ok) << cfg.model_type << "\n" << r.report;
    // The same with per-sequence (grpo) weights: each row's tokens weigh 1/(rows · its count).
    const std::vector<float> mv = mask.to_vector<float>();
    const int64_t rows = mask.shape()[0], T = mask.shape()[1];
    std::vector<float> wv(mv.size());
    for (int64_t b = 0; b < rows; ++b) {
      float n = 0;
      for (int64_t t = 0; t < T; ++t) n += mv[static_cast<size_t>(b * T + t)];
      for (int64_t t = 0; t < T; ++t)
        wv[static_cast<size_t>(b * T + t)] = mv[static_cast<size_t>(b * T + t)] / (n * rows);
    }
    const Tensor weights = Tensor::from_vector(wv, mask.shape());
    auto g = [&](const std::vector<Variable>&) {
      return ppo_policy_loss(response_logprobs(m, batch, 0.7), old, A, mask, 0.2, 0.28, weights)
          .loss;
    };
    GradcheckResult rw = gradcheck(g, checked_params(m));
    EXPECT_TRUE(rw.ok) << cfg.model_type << " (grpo weights)\n" << rw.report;
    PolicyLoss l = ppo_policy_loss(response_logprobs(m, batch, 0.7), old, A, mask, 0.2);
    EXPECT_GT(l.clip_fraction, 0.0);  // both regimes are exercised
    EXPECT_LT(l.clip_fraction, 1.0);
  }
}

TEST(PpoMath, ValueLossGradcheckThroughTinyModel) {
  ModelConfig cfg = testing::tiny_llama();
  cfg.num_labels = 1;
  Transformer m(cfg);
  m.init_weights(5);
  m.set_requires_grad(true);
  SequenceBatch batch = tiny_sequences();
  const Tensor mask = batch.completion_mask;
  Tensor old;
  {
    NoGradGuard g;
    old = offset_tensor(position_values(m, batch).data(), mask);
  }
  std::vector<float> ret(static_cast<size_t>(mask.numel()));
  for (size_t i = 0; i < ret.size(); ++i) ret[i] = 0.3f * static_cast<float>(i % 5) - 0.5f;
  Tensor R = Tensor::from_vector(ret, mask.shape());
  auto f = [&](const std::vector<Variable>&) {
    return ppo_value_loss(position_values(m, batch), old, R, mask, 0.2).loss;
  };
  GradcheckResult r = gradcheck(f, {m.parameter("score.weight"), first_query(m)});
  EXPECT_TRUE(r.ok) << r.report;
  ValueLoss l = ppo_value_loss(position_values(m, batch), old, R, mask, 0.2);
  EXPECT_GT(l.clip_fraction, 0.0);
  EXPECT_LT(l.clip_fraction, 1.0);
}

TEST(PpoMath, KlLossGradcheckThroughTinyModel) {
  Transformer m(testing::tiny_gpt2());
  m.init_weights(7);
  m.set_requires_grad(true);
  SequenceBatch batch = tiny_sequences();
  Tensor ref;
  {
    NoGradGuard g;
    ref = offset_tensor(response_logprobs(m, batch, 1.0).data(), batch.completion_mask);
  }
  auto f = [&](const std::vector<Variable>&) {
    return k3_kl_loss(response_logprobs(m, batch, 1.0), ref, batch.completion_mask);
  };
  GradcheckResult r = gradcheck(f, checked_params(m));
  EXPECT_TRUE(r.ok) << r.report;
  // Its value is the mean of the per-token k3 estimates.
  std::vector<float> lp, rf = ref.to_vector<float>(), mk = batch.completion_mask.to_vector<float>();
  {
    NoGradGuard g;
    lp = response_logprobs(m, batch, 1.0).data().to_vector<float>();
  }
  double sum = 0, n = 0;
  for (size_t i = 0; i < mk.size(); ++i) {
    if (mk[i] == 0) continue;
    sum += kl_k3(lp[i], rf[i]);
    n += 1;
  }
  EXPECT_NEAR(f({}).data().item(), sum / n, 1e-6);
}

}  // namespace
}  // namespace rlaif
