// The rollouts of algorithms/ppo_rollout.h: their layout, EOS handling and the missing-EOS
// penalty, their determinism, the rewards and advantages of a hand-made rollout worked by hand,
// and the per-token log-probs and entropies PPO takes from the policy (padded vocabulary or not).
#include <gtest/gtest.h>

#include <cmath>

#include "algorithms/advantages.h"
#include "algorithms/ppo.h"
#include "algorithms/ppo_rollout.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tests/algorithms/synthetic_sort.h"
#include "tests/model/model_test_util.h"
#include "tests/support/tiny_sequences.h"

namespace rlaif {
namespace {

using test::tiny_sequences;
using namespace rlaif::testing;

// Score = 1 for every completion; with a random (untrained) policy almost no response reaches
// EOS within 4 tokens, so the missing-EOS penalty shows.
struct MechanicsSetup {
  Transformer policy = sort_initial_policy(4);
  Transformer reference = clone_model(policy);
  FunctionReward reward{[](const std::string&, const std::string&) { return 1.0; }};
  std::vector<std::string> prompts = sort_prompts(10, 21);
  PpoOptions options;
  MechanicsSetup() {
    reference.set_requires_grad(false);
    options.advantage = AdvantageKind::grpo;
    options.batch_prompts = 3;
    options.samples_per_prompt = 2;
    options.max_new_tokens = 4;
    options.missing_eos_penalty = 0.5;
    options.forward_batch = 4;  // two chunks: batching must not change anything
    options.seed = 9;
  }
  RolloutModels models() { return {&policy, &reference, nullptr, &sort_tokenizer(), &reward}; }
};

TEST(PpoRollout, LayoutEosPenaltyAndDeterminism) {
  MechanicsSetup m;
  Rollout r = collect_rollout(m.models(), m.prompts, /*step=*/2, m.options);
  ASSERT_EQ(r.samples.size(), 6u);
  const std::vector<int64_t> indices = rollout_prompt_indices(2, 3, 10, 9);
  for (size_t i = 0; i < 6; ++i) {
    const Sample& s = r.samples[i];
    EXPECT_EQ(s.prompt_index, indices[i / 2]);  // prompt-major, K = 2 per prompt
    const size_t L = s.tokens.completion.size();
    ASSERT_GE(L, 1u);
    ASSERT_LE(L, 4u);
    EXPECT_EQ(s.eos, s.tokens.completion.back() == sort_tokenizer().eos_id());
    EXPECT_EQ(s.score, s.eos ? 1.0 : 0.5);
    EXPECT_EQ(s.logprobs.size(), L);
    EXPECT_EQ(s.ref_logprobs, s.logprobs);  // the reference is the initial policy
    EXPECT_TRUE(s.values.empty());          // no value model
    for (float lp : s.logprobs) EXPECT_LE(lp, 0.0f);
    EXPECT_GE(s.entropy, 0.0);
  }
  // The logged log-probabilities are those of a fresh forward pass over the sequences.
  std::vector<const Sample*> all;
  for (const Sample& s : r.samples) all.push_back(&s);
  SequenceBatch batch = sample_batch(all, Device::cpu(), 0);
  std::vector<float> fresh;
  {
    NoGradGuard g;
    fresh = response_logprobs(m.policy, batch, 1.0).data().to_vector<float>();
  }
  Tensor logged = per_token_tensor(all, &Sample::logprobs, batch.width(), Device::cpu());
  std::vector<float> mask = batch.completion_mask.to_vector<float>(),
                     lv = logged.to_vector<float>();
  for (size_t i = 0; i < mask.size(); ++i) {
    if (mask[i] != 0) {
      EXPECT_NEAR(lv[i], fresh[i], 1e-5) << i;
    }
  }
  // A pure function of (seed, step): again the same; another step samples other prompts/tokens.
  Rollout again = collect_rollout(m.models(), m.prompts, 2, m.options);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(again.samples[i].tokens.completion, r.samples[i].tokens.completion);
    EXPECT_EQ(again.samples[i].logprobs, r.samples[i].logprobs);
  }
  Rollout other = collect_rollout(m.models(), m.prompts, 3, m.options);
  bool differs = false;
  for (size_t i = 0; i < 6; ++i)
    differs |= other.samples[i].tokens.completion != r.samples[i].tokens.completion;
  EXPECT_TRUE(differs);
}

// A hand-made rollout of two prompts × two samples, with known numbers.
Rollout handmade_rollout() {
  Rollout r;
  auto sample = [](std::vector<int32_t> completion, std::vector<float> logp, std::vector<float> ref,
                   std::vector<float> values, double score) {
    Sample s;
    s.tokens.prompt = {1, 7};
    s.tokens.completion = std::move(completion);
    s.logprobs = std::move(logp);
    s.ref_logprobs = std::move(ref);
    s.values = std::move(values);
    s.score = score;
    return s;
  };
  r.samples = {
      sample({5, 6, 2}, {-1.0f, -0.5f, -0.2f}, {-1.2f, -0.5f, -0.1f}, {0.5f, 0.6f, 0.7f}, 1.0),
      sample({5, 2}, {-0.3f, -0.4f}, {-0.3f, -0.9f}, {0.2f, 0.1f}, 0.0),
      sample({8, 2}, {-2.0f, -0.1f}, {-2.0f, -0.1f}, {0.0f, 0.0f}, 3.0),
      sample({9, 9, 2}, {-0.7f, -0.6f, -0.5f}, {-0.7f, -0.6f, -0.5f}, {0.1f, 0.2f, 0.3f}, -1.0)};
  return r;
}

TEST(PpoRollout, RewardsAndAdvantagesOfAHandmadeRollout) {
  PpoOptions o;
  o.samples_per_prompt = 2;
  o.kl_coef = 0.1;
  o.gamma = 1.0;
  o.lambda = 0.95;

  // gae: r_t = −β·k1_t, the score added at the last token; GAE; whitened advantages.
  Rollout gae_r = handmade_rollout();
  o.advantage = AdvantageKind::gae;
  assign_advantages(gae_r, o, 0.1);
  const Sample& s0 = gae_r.samples[0];
  EXPECT_NEAR(s0.kl[0], 0.2, 1e-6);
  EXPECT_NEAR(s0.rewards[0], -0.02, 1e-6);
  EXPECT_NEAR(s0.rewards[1], 0.0, 1e-6);
  EXPECT_NEAR(s0.rewards[2], 1.0 + 0.1 * 0.1, 1e-6);  // k1 = −0.1 at the last token, plus the score
  std::vector<double> raw_adv;
  for (const Sample& s : gae_r.samples) {
    GaeResult g =
        gae({s.rewards.begin(), s.rewards.end()}, {s.values.begin(), s.values.end()}, 1.0, 0.95);
    for (size_t t = 0; t < g.returns.size(); ++t) EXPECT_NEAR(s.returns[t], g.returns[t], 1e-6);
    raw_adv.insert(raw_adv.end(), g.advantages.begin(), g.advantages.end());
  }
  std::vector<double> white = whiten(raw_adv);
  size_t at = 0;
  for (const Sample& s : gae_r.samples) {
    for (float a : s.advantages) EXPECT_NEAR(a, white[at++], 1e-5);
  }

  // rloo: sequence rewards score − β·Σ k1 = {1 − 0.01, 0 − 0.05, 3, −1}; leave-one-out pairs.
  Rollout rloo_r = handmade_rollout();
  o.advantage = AdvantageKind::rloo;
  assign_advantages(rloo_r, o, 0.1);
  const double R0 = 1.0 - 0.1 * (0.2 + 0.0 - 0.1), R1 = 0.0 - 0.1 * 0.5;
  for (float a : rloo_r.samples[0].advantages) EXPECT_NEAR(a, R0 - R1, 1e-6);
  for (float a : rloo_r.samples[1].advantages) EXPECT_NEAR(a, R1 - R0, 1e-6);
  for (float a : rloo_r.samples[2].advantages) EXPECT_NEAR(a, 4.0, 1e-6);
  EXPECT_TRUE(rloo_r.samples[0].returns.empty());

  // grpo: the scores group-normalised ({1, 0} → ±0.7070), no KL in the rewards.
  Rollout grpo_r = handmade_rollout();
  o.advantage = AdvantageKind::grpo;
  assign_advantages(grpo_r, o, 0.1);
  for (float a : grpo_r.samples[0].advantages) EXPECT_NEAR(a, 0.5 / (std::sqrt(0.5) + 1e-4), 1e-5);
  for (float a : grpo_r.samples[3].advantages) EXPECT_NEAR(a, -2.0 / (std::sqrt(8.0) + 1e-4), 1e-5);
  EXPECT_NEAR(grpo_r.samples[0].rewards[0], 0.0, 1e-7);
  EXPECT_NEAR(grpo_r.samples[0].rewards[2], 1.0, 1e-7);
}

// ---- Log-probs and entropies ------------------------------------------------------------------

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
