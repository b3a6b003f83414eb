// PPO, RLOO and GRPO learn: on the synthetic sorting task (tests/algorithms/synthetic_sort.h),
// from an SFT-warm-started policy and a reward model trained on correct-vs-wrong pairs, each
// raises the reward model's mean score of its samples on held-out prompts far beyond the noise.
// And the machinery around them: rollouts (layout, EOS handling, the missing-EOS penalty),
// rewards and advantages of a hand-made rollout, and bit-exact resumption.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "algorithms/ppo.h"
#include "algorithms/reward.h"
#include "io/model_dir.h"
#include "tests/algorithms/synthetic_sort.h"

namespace rlaif {
namespace {

using namespace rlaif::testing;
namespace fs = std::filesystem;

std::string temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() /
               ("rlaif_ppo_test_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  return p.string();
}

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
  static const std::string dir = [] {
    Transformer rm = clone_model(sft_policy(kSftSteps, 1));
    ensure_scalar_head(rm, 3);
    rm.set_requires_grad(true);
    TruncationOptions t;
    t.max_length = sort_policy_config().max_position_embeddings;
    t.max_prompt_length = t.max_length - 16;
    RewardOptions ro;
    ro.batch = 16;
    ro.seed = 3;
    RewardTask task(rm, tokenize_pairs(sort_tokenizer(), sort_template(), sort_preference_pairs(2000, 10), t),
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
  }();
  return dir;
}

struct SortScores {
  double rm_score = 0.0;     // mean reward-model score of one sample per held-out prompt
  double exact_match = 0.0;  // fraction of those samples that are the sorted answer
};

// Samples one answer (temperature 1, fixed seed, at most 8 tokens) to each of 128 test-split
// prompts and scores them.
SortScores evaluate(const Transformer& policy, RewardFunction& rm, uint64_t seed = kEvalSeed) {
  std::vector<std::string> prompts;
  for (int rep = 0; rep < kEvalSamples; ++rep) {
    for (const std::string& p : sort_prompts(kEvalPrompts, 99, SortSplit::test)) prompts.push_back(p);
  }
  std::vector<std::vector<int32_t>> ids;
  for (const std::string& p : prompts) ids.push_back(tokenize_prompt(sort_tokenizer(), sort_template(), p, 40));
  GenerationOptions g;
  g.max_new_tokens = 8;
  g.sampling.temperature = 1.0f;
  g.sampling.seed = seed;
  g.eos_id = sort_tokenizer().eos_id();
  std::vector<std::string> answers;
  SortScores out;
  for (size_t b = 0; b < ids.size(); b += 128) {
    std::vector<std::vector<int32_t>> part(ids.begin() + static_cast<long>(b),
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

LearningRun run_learning(AdvantageKind kind, uint64_t seed, int64_t steps) {
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
  run.result = train_ppo(models, sort_prompts(2000, 5, SortSplit::train),
                         learning_options(kind, seed), learning_trainer(steps, out));
  run.after = evaluate(policy, rm);
  fs::remove_all(out);
  std::printf("%s: RM score %.3f -> %.3f, exact match %.3f -> %.3f\n", advantage_kind_name(kind),
              run.before.rm_score, run.after.rm_score, run.before.exact_match,
              run.after.exact_match);
  return run;
}

