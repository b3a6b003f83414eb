// PPO, RLOO and GRPO learn: on the synthetic sorting task (tests/algorithms/synthetic_sort.h),
// from an SFT-warm-started policy and a reward model trained on correct-vs-wrong pairs, each
// raises the reward model's mean score of its samples on held-out prompts far beyond the noise.
// And the machinery around them: option checks and gradient accumulation (rollouts:
// ppo_rollout_test.cpp; resumption: ppo_checkpoint_test.cpp; the reward model scorer:
// reward_function_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "algorithms/advantages.h"
#include "algorithms/ppo.h"
#include "algorithms/reward.h"
#include "autograd/grad_mode.h"
#include "io/model_dir.h"
#include "tests/algorithms/synthetic_sort.h"
#include "tests/support/temp_dir.h"

namespace rlaif {
namespace {

using namespace rlaif::testing;
namespace fs = std::filesystem;

using test::temp_dir;

// ---- The learning setup ---------------------------------------------------------------------

constexpr int64_t kSftSteps = 60;
constexpr int64_t kRmSteps = 60;
constexpr int64_t kEvalPrompts = 128;
constexpr int kEvalSamples = 8;
constexpr uint64_t kEvalSeed = 777;

// A reward model for the sort task: the SFT policy with a score head, trained by Bradley–Terry on
// 2000 (sorted, wrong) pairs of train-split prompts, saved as a model directory (so the PPO
// tests read it through RewardModelScorer's directory path, as `rlaif ppo --reward-model` does).
// Built once per process.
const std::string& sort_reward_model_dir() {
  struct Dir {
    std::string path;
    ~Dir() { fs::remove_all(path); }
  };
  static const Dir dir{[] {
    Transformer rm = clone_model(sft_policy(kSftSteps, 1));
    ensure_scalar_head(rm, 3);
    rm.set_requires_grad(true);
    TruncationOptions t;
    t.max_length = sort_policy_config().max_position_embeddings;
    t.max_prompt_length = t.max_length - 16;
    RewardOptions ro;
    ro.batch = 16;
    ro.seed = 3;
    RewardTask task(
        rm, tokenize_pairs(sort_tokenizer(), sort_template(), sort_preference_pairs(2000, 10), t),
        {}, ro);
    TrainerOptions o;
    o.out_dir = temp_dir("rm_run");
    o.steps = kRmSteps;
    o.schedule.kind = "constant";
    o.schedule.lr = 1e-3;
    o.adamw.weight_decay = 0.0;
    o.eval_every = 0;
    o.label = "rm (sort task)";
    train(rm, task, o);
    fs::remove_all(o.out_dir);
    const std::string out = temp_dir("rm");
    save_model(out, rm, sort_tokenizer_path());
    return out;
  }()};
  return dir.path;
}

struct SortScores {
  double rm_score = 0.0;     // mean reward-model score of the samples
  double exact_match = 0.0;  // fraction of those samples that are the sorted answer
};

// Samples 8 answers (temperature 1, at most 8 tokens, sampling seed `seed`) to each of 128
// test-split prompts and scores them: 1024 samples keep the estimate's noise near ±0.27.
SortScores evaluate(const Transformer& policy, RewardFunction& rm, uint64_t seed = kEvalSeed) {
  std::vector<std::string> prompts;
  for (int rep = 0; rep < kEvalSamples; ++rep) {
    for (const std::string& p : sort_prompts(kEvalPrompts, 99, SortSplit::test))
      prompts.push_back(p);
  }
  std::vector<std::vector<int32_t>> ids;
  for (const std::string& p : prompts)
    ids.push_back(tokenize_prompt(sort_tokenizer(), sort_template(), p, 40));
  GenerationOptions g;
  g.max_new_tokens = 8;
  g.sampling.temperature = 1.0f;
  g.sampling.seed = seed;
  g.eos_ids = {sort_tokenizer().eos_id()};
  std::vector<std::string> answers;
  SortScores out;
  for (size_t b = 0; b < ids.size(); b += 128) {
    std::vector<std::vector<int32_t>> part(
        ids.begin() + static_cast<long>(b),
        ids.begin() + static_cast<long>(std::min(ids.size(), b + 128)));
    std::vector<uint64_t> streams;
    for (size_t i = b; i < b + part.size(); ++i) streams.push_back(i);
    for (const Generation& gen : generate(policy, part, g, streams)) {
      answers.push_back(sort_tokenizer().decode(gen.tokens));
    }
  }
  const std::vector<double> scores = rm.score(prompts, answers);
  for (size_t i = 0; i < prompts.size(); ++i) {
    out.rm_score += scores[i] / static_cast<double>(prompts.size());
    out.exact_match += is_correct(prompts[i], answers[i]) / static_cast<double>(prompts.size());
  }
  return out;
}

// The settings of the learning tests: 32 sequences a step (gae: 32 prompts × 1; rloo, grpo:
// 8 prompts × 4 samples), answers of at most 8 tokens, 2 epochs × 2 mini-batches, lr 3e-4.
PpoOptions learning_options(AdvantageKind kind, uint64_t seed) {
  PpoOptions o;
  o.advantage = kind;
  o.batch_prompts = kind == AdvantageKind::gae ? 32 : 8;
  o.samples_per_prompt = kind == AdvantageKind::gae ? 1 : 4;
  o.max_new_tokens = 8;
  o.ppo_epochs = 2;
  o.mini_batches = 2;
  o.kl_coef = 0.05;
  o.missing_eos_penalty = 1.0;
  o.max_prompt_length = 40;
  o.forward_batch = 32;
  o.seed = seed;
  return o;
}

TrainerOptions learning_trainer(int64_t steps, const std::string& out) {
  TrainerOptions t;
  t.out_dir = out;
  t.steps = steps;
  t.schedule.kind = "constant";
  t.schedule.lr = 3e-4;
  t.adamw.weight_decay = 0.0;
  t.label = "ppo (sort task)";
  return t;
}

struct LearningRun {
  SortScores before, after;
  PpoResult result;
};

LearningRun run_learning(AdvantageKind kind, uint64_t seed, int64_t steps,
                         const std::function<void(PpoOptions&)>& adjust = nullptr) {
  RewardModelScorer rm(sort_reward_model_dir(), RewardModelOptions{});
  Transformer policy = sft_policy(kSftSteps, 1);
  Transformer reference = clone_model(policy);
  reference.set_requires_grad(false);
  Transformer value = load_model(sort_reward_model_dir());  // the value model starts as the RM
  value.set_requires_grad(true);
  LearningRun run;
  run.before = evaluate(policy, rm);
  const std::string out = temp_dir(std::string("learn_") + advantage_kind_name(kind));
  PpoModels models{&policy, &reference, kind == AdvantageKind::gae ? &value : nullptr,
                   &sort_tokenizer(), &rm};
  PpoOptions options = learning_options(kind, seed);
  if (adjust) adjust(options);
  run.result = train_ppo(models, sort_prompts(2000, 5, SortSplit::train), options,
                         learning_trainer(steps, out));
  run.after = evaluate(policy, rm);
  fs::remove_all(out);
  std::printf("%s: RM score %.3f -> %.3f, exact match %.3f -> %.3f\n", advantage_kind_name(kind),
              run.before.rm_score, run.after.rm_score, run.before.exact_match,
              run.after.exact_match);
  return run;
}

// Figures (Release, CPU, 20 steps; the RM's mean score of 1024 samples, 8 for each of 128
// held-out prompts, evaluation sampling seed 777):
//   the SFT policy                     4.68 (4.72 ± 0.27 over six evaluation seeds)
//   after PPO-gae, seeds 1, 2, 3, 4    6.66, 6.77, 6.77, 7.00
//   after RLOO (K = 4)                 6.71, 6.87, 6.57, 6.68
//   after GRPO (K = 4)                 6.85, 6.67, 6.76, 6.63
// so every run gains +1.9 to +2.3, about 7 standard deviations of the score estimate, while
// runs differ by at most ±0.2 from one another. The threshold, +1.0, leaves room for other BLAS
// builds taking other trajectories. (Exact match of the same samples falls, 0.031 → 0.012-0.021:
// this small reward model rewards well-formed, sorted-looking answers more than the right
// letters, and the policy learns what it rewards. The tests are about the optimiser.)
constexpr double kMinGain = 1.0;

void expect_learning(AdvantageKind kind, const std::function<void(PpoOptions&)>& adjust = nullptr) {
  LearningRun run = run_learning(kind, /*seed=*/1, /*steps=*/20, adjust);
  ::testing::Test::RecordProperty("rm_score_before", std::to_string(run.before.rm_score));
  ::testing::Test::RecordProperty("rm_score_after", std::to_string(run.after.rm_score));
  EXPECT_GT(run.after.rm_score, run.before.rm_score + kMinGain)
      << advantage_kind_name(kind) << ": " << run.before.rm_score << " -> " << run.after.rm_score;
  EXPECT_EQ(run.result.steps_done, 20);
  EXPECT_FALSE(run.result.interrupted);
}

TEST(PpoLearning, GaeRaisesTheRewardModelScore) {
  expect_learning(AdvantageKind::gae);
}
TEST(PpoLearning, RlooRaisesTheRewardModelScore) {
  expect_learning(AdvantageKind::rloo);
}
// GRPO as its paper aggregates the loss: each response's mean, then the mean over responses.
TEST(PpoLearning, GrpoRaisesTheRewardModelScore) {
  expect_learning(AdvantageKind::grpo,
                  [](PpoOptions& o) { o.loss_aggregation = LossAggregation::grpo; });
}
// Dr. GRPO (centred advantages, no division by the group's std, and its constant loss
// normaliser) with DAPO's clip-higher.
TEST(PpoLearning, DrGrpoWithClipHigherRaisesTheRewardModelScore) {
  expect_learning(AdvantageKind::grpo, [](PpoOptions& o) {
    o.scale_rewards = false;
    o.loss_aggregation = LossAggregation::dr_grpo;
    o.cliprange_high = 0.28;
  });
}

TEST(PpoOptions, BadSettingsAreRefusedNamingTheFlag) {
  PpoOptions o;
  o.advantage = AdvantageKind::rloo;
  o.samples_per_prompt = 1;
  try {
    o.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--samples-per-prompt"), std::string::npos) << e.what();
  }
  o = PpoOptions();
  o.batch_prompts = 3;
  o.mini_batches = 2;
  EXPECT_THROW(o.validate(), Error);
  o = PpoOptions();
  o.temperature = 0.0;
  EXPECT_THROW(o.validate(), Error);
  EXPECT_THROW(parse_advantage_kind("ppo"), Error);
}

// ---- Loss aggregation -------------------------------------------------------------------------

TEST(PpoUpdate, GradAccumSplitsTheMiniBatchLossExactly) {
  // One GRPO step on a rollout whose responses differ in length, the mini-batch in one
  // micro-batch and in two: each aggregation's loss is the mini-batch's (not a mean of the
  // micro-batches' means), so the logged loss and the trained weights agree; and the three
  // aggregations weigh the tokens differently, so their losses differ.
  // A briefly trained policy: its answers end with EOS at different lengths.
  const Transformer initial = sft_policy(20, 1);
  // An untrained policy's answers are all wrong; their lengths in characters differ.
  FunctionReward reward(
      [](const std::string&, const std::string& c) { return static_cast<double>(c.size()); });
  const std::vector<std::string> prompts = sort_prompts(4, 17);
  PpoOptions o;
  o.advantage = AdvantageKind::grpo;
  o.batch_prompts = 2;
  o.samples_per_prompt = 2;
  o.max_new_tokens = 6;
  o.ppo_epochs = 1;
  o.seed = 3;
  auto run = [&](LossAggregation kind, int64_t grad_accum, Transformer& policy) {
    Transformer reference = clone_model(initial);
    reference.set_requires_grad(false);
    o.loss_aggregation = kind;
    TrainerOptions t;
    t.out_dir =
        temp_dir(std::string("agg_") + loss_aggregation_name(kind) + std::to_string(grad_accum));
    t.steps = 1;
    // ε ≫ |m̂|/√v̂ makes AdamW's first step lr·ĝ/(|ĝ| + ε) ≈ lr·g: linear in the gradient, so
    // the weights compare the gradients themselves, not only their signs.
    t.schedule.lr = 1.0;
    t.adamw.eps = 1.0;
    t.adamw.weight_decay = 0.0;
    t.grad_accum = grad_accum;
    PpoModels models{&policy, &reference, nullptr, &sort_tokenizer(), &reward};
    PpoResult r = train_ppo(models, prompts, o, t);
    fs::remove_all(t.out_dir);
    return r.last_metrics;
  };
  auto get = [](const std::vector<std::pair<std::string, double>>& m, const std::string& name) {
    for (auto& [k, v] : m)
      if (k == name) return v;
    ADD_FAILURE() << "no " << name << " logged";
    return 0.0;
  };
  std::vector<double> losses;
  std::vector<std::pair<std::string, double>> dapo_metrics;
  for (LossAggregation kind :
       {LossAggregation::dapo, LossAggregation::grpo, LossAggregation::dr_grpo}) {
    Transformer one = clone_model(initial), two = clone_model(initial);
    one.set_requires_grad(true);
    two.set_requires_grad(true);
    const auto ma = run(kind, 1, one), mb = run(kind, 2, two);
    const double a = get(ma, "policy_loss"), b = get(mb, "policy_loss");
    EXPECT_NEAR(a, b, 1e-6 * std::max(1.0, std::abs(a))) << loss_aggregation_name(kind);
    auto pa = one.parameters(), pb = two.parameters();
    double worst = 0.0;
    for (size_t i = 0; i < pa.size(); ++i) {
      const std::vector<float> x = pa[i].second.data().to_vector<float>(),
                               y = pb[i].second.data().to_vector<float>();
      for (size_t j = 0; j < x.size(); ++j)
        worst = std::max(worst, static_cast<double>(std::abs(x[j] - y[j])));
    }
    EXPECT_LT(worst, 1e-6) << loss_aggregation_name(kind);
    losses.push_back(a);
    if (kind == LossAggregation::dapo) dapo_metrics = ma;
  }
  // The logged metrics again under TRL's names.
  const auto& m = dapo_metrics;
  EXPECT_EQ(get(m, "objective/kl"), get(m, "kl"));
  EXPECT_EQ(get(m, "objective/scores"), get(m, "score"));
  EXPECT_EQ(get(m, "objective/rlhf_reward"), get(m, "score"));  // grpo: the KL is in the loss
  EXPECT_EQ(get(m, "reward"), get(m, "score"));
  EXPECT_NEAR(get(m, "objective/entropy"), get(m, "entropy") * get(m, "response_length"), 1e-9);
  EXPECT_EQ(get(m, "policy/clipfrac_avg"), get(m, "clip_fraction"));
  EXPECT_EQ(get(m, "loss/policy_avg"), get(m, "policy_loss"));
  EXPECT_NEAR(get(m, "val/num_eos_tokens"), get(m, "eos_fraction") * 4, 1e-12);
  EXPECT_EQ(get(m, "completions/mean_length"), get(m, "response_length"));
  EXPECT_NE(losses[0], losses[1]);
  EXPECT_NE(losses[0], losses[2]);
  EXPECT_NE(losses[1], losses[2]);
}

}  // namespace
}  // namespace rlaif
