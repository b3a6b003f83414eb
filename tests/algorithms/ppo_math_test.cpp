// The arithmetic of PPO, RLOO and GRPO against known answers (the figures), and the
// gradients of every loss checked by finite differences through a tiny transformer.
#include <gtest/gtest.h>

#include <cmath>

#include "algorithms/advantages.h"
#include "algorithms/kl_penalty.h"
#include "algorithms/ppo_losses.h"
#include "algorithms/ppo_rollout.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tests/model/model_test_util.h"

namespace rlaif {
namespace {

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

TEST(PpoMath, AdaptiveKlController) {
  AdaptiveKlController c(0.1, /*target=*/6.0, /*horizon=*/10000);
  c.update(12.0, 64);  // KL twice the target: e clipped to 0.2
  EXPECT_NEAR(c.value(), 0.1 * (1 + 0.2 * 64 / 10000.0), 1e-15);
  c.update(5.4, 100);  // e = 5.4/6 − 1 = −0.1
  EXPECT_NEAR(c.value(), 0.1 * (1 + 0.2 * 64 / 10000.0) * (1 - 0.1 * 100 / 10000.0), 1e-15);
  EXPECT_THROW(AdaptiveKlController(0.1, 0.0), Error);
}

// ---- Gradients through a tiny model -----------------------------------------------------------

// A batch of two prompt + response sequences for the tiny models (vocab ≥ 23, context ≥ 9).
SequenceBatch tiny_sequences() {
  std::vector<TokenizedExample> ex = {{{1, 5, 7}, {9, 4, 2, 11}}, {{1, 3}, {6, 8, 2}}};
  return make_batch(ex, Device::cpu());
}

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

TEST(PpoMath, ResponseLogprobsMatchTheModelAtTemperatureOne) {
  Transformer m(testing::tiny_llama());
  m.init_weights(11);
  SequenceBatch batch = tiny_sequences();
  NoGradGuard g;
  Tensor entropy;
  std::vector<float> ours = response_logprobs(m, batch, 1.0, &entropy).data().to_vector<float>();
  Variable summed = completion_logprobs(m, batch);  // Σ over each row's response
  std::vector<float> mask = batch.completion_mask.to_vector<float>(),
                     h = entropy.to_vector<float>();
  const int64_t T = batch.width();
  for (int64_t b = 0; b < 2; ++b) {
    double s = 0;
    for (int64_t t = 0; t < T; ++t)
      s += mask[static_cast<size_t>(b * T + t)] * ours[static_cast<size_t>(b * T + t)];
    EXPECT_NEAR(s, summed.data().to_vector<float>()[static_cast<size_t>(b)], 1e-5);
  }
  for (float e : h) {
    EXPECT_GE(e, 0.0f);
    EXPECT_LE(e, std::log(29.0f) + 1e-5f);  // at most log V
  }
}

// PPO's log-probs (at a temperature), their gradient and the entropies are the same through
// the padded head (tiny vocabularies of 23 and 29 padded to 64) as through the plain one.
TEST(PpoMath, ResponseLogprobsAndEntropyIgnoreTheVocabularyPadding) {
  for (ModelConfig cfg : {testing::tiny_gpt2(), testing::tiny_llama()}) {
    Transformer m(cfg);
    m.init_weights(4);
    m.set_requires_grad(true);
    ASSERT_GT(m.padded_vocab(), cfg.vocab_size);
    const SequenceBatch batch = tiny_sequences();
    Variable head = m.parameter(cfg.is_gpt2() ? "transformer.wte.weight" : "lm_head.weight");
    auto run = [&](bool padded, std::vector<float>& logp, std::vector<float>& entropy,
                   std::vector<float>& grad) {
      m.set_vocab_padding(padded);
      head.zero_grad();
      Tensor h;
      Variable lp = response_logprobs(m, batch, 0.7, &h);
      sum_all(mul(lp, Variable(batch.completion_mask))).backward();
      logp = lp.data().to_vector<float>();
      entropy = h.to_vector<float>();
      grad = head.grad().to_vector<float>();
    };
    std::vector<float> lp0, h0, g0, lp1, h1, g1;
    run(true, lp1, h1, g1);
    run(false, lp0, h0, g0);
    auto near = [&](const std::vector<float>& a, const std::vector<float>& b, const char* what) {
      ASSERT_EQ(a.size(), b.size()) << what;
      for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_TRUE(std::isfinite(a[i])) << cfg.model_type << " " << what << " [" << i << "]";
        ASSERT_NEAR(a[i], b[i], 1e-6 + 1e-6 * std::fabs(b[i]))
            << cfg.model_type << " " << what << " [" << i << "]";
      }
    };
    near(lp1, lp0, "log-prob");
    near(h1, h0, "entropy");
    near(g1, g0, "head gradient");
  }
}

}  // namespace
}  // namespace rlaif
