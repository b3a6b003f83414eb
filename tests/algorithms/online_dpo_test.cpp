// Online and iterative DPO (algorithms/online_dpo.h): sampling that repeats exactly, rounds that
// reuse their written pairs, and a learning test on the sort task (the pair judges:
// pair_judge_test.cpp).
#include "algorithms/online_dpo.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "runtime/error.h"
#include "tests/algorithms/preference_test_util.h"
#include "tests/algorithms/synthetic_sort.h"
#include "tests/support/temp_dir.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;
using namespace rlaif::testing;

using test::temp_dir;

// The learning test's setup: an SFT warm start with room to improve, then online DPO.
constexpr int64_t kLearnSftSteps = 60;
constexpr int64_t kLearnSteps = 30;
constexpr double kLearnLr = 1e-4;
constexpr double kLearnMinGain = 0.05;

OnlineDpoOptions small_options() {
  OnlineDpoOptions o;
  o.dpo.beta = 0.1;
  o.batch_prompts = 4;
  o.max_new_tokens = kSortMaxNewTokens;
  o.temperature = 1.0;
  o.chat = sort_template();
  o.seed = 11;
  return o;
}

TEST(OnlineDpo, SamplesRepeatAndRoundsTrainOnTheirWrittenPairs) {
  const Transformer initial = sort_initial_policy(4);
  const Transformer reference = clone_model(initial);
  // An untrained policy's answers are all wrong; their lengths in characters differ.
  FunctionReward length(
      [](const std::string&, const std::string& c) { return static_cast<double>(c.size()); });
  ScoreJudge judge(length);
  const std::vector<std::string> prompts = sort_prompts(16, 5);
  OnlineDpoOptions o = small_options();
  o.rounds = 2;
  o.steps = 4;
  o.rounds_dir = temp_dir("rounds");
  Transformer policy = clone_model(initial);
  policy.set_requires_grad(true);
  OnlineDpoTask task(policy, reference, sort_tokenizer(), prompts, judge, o);
  // The same prompts and streams sample the same completions.
  const auto a = task.sample_and_judge({0, 1, 2, 3}, 100);
  const auto b = task.sample_and_judge({0, 1, 2, 3}, 100);
  ASSERT_EQ(a.pairs.size(), b.pairs.size());
  for (size_t i = 0; i < a.pairs.size(); ++i) {
    EXPECT_EQ(a.pairs[i].chosen.completion, b.pairs[i].chosen.completion);
    EXPECT_EQ(a.pairs[i].rejected.completion, b.pairs[i].rejected.completion);
  }
  // Round 1's pairs are written before it trains; a task that finds them trains on them without
  // asking its judge.
  const MicroBatchResult first = task.micro_batch(0, 0, 1.0);
  ASSERT_TRUE(fs::exists(o.rounds_dir + "/round_0001.jsonl"));
  EXPECT_FALSE(fs::exists(o.rounds_dir + "/round_0002.jsonl"));
  for (auto& [name, v] : policy.parameters()) v.zero_grad();
  FunctionReward refuses([](const std::string&, const std::string&) -> double {
    throw Error("the judge was asked again");
  });
  ScoreJudge refusing(refuses);
  OnlineDpoTask resumed(policy, reference, sort_tokenizer(), prompts, refusing, o);
  const MicroBatchResult again = resumed.micro_batch(0, 0, 1.0);
  EXPECT_EQ(first.loss, again.loss);
  EXPECT_EQ(first.tokens, again.tokens);
  // Step 2 (0-based) is round 2: sampled, judged and written then.
  task.micro_batch(2, 0, 1.0);
  EXPECT_TRUE(fs::exists(o.rounds_dir + "/round_0002.jsonl"));
  // Pairs of another seed are refused, naming the file.
  OnlineDpoOptions other = o;
  other.seed = 12;
  OnlineDpoTask mismatched(policy, reference, sort_tokenizer(), prompts, refusing, other);
  try {
    mismatched.micro_batch(0, 0, 1.0);
    FAIL() << "pairs of another seed were used";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("round_0001.jsonl"), std::string::npos) << e.what();
  }
  fs::remove_all(o.rounds_dir);
}

TEST(OnlineDpo, StartsAtLn2AndLogsTheJudgesMetrics) {
  // With the policy equal to the reference every pair's loss is −log σ(0) = ln 2.
  const Transformer initial = sort_initial_policy(4);
  const Transformer reference = clone_model(initial);
  // An untrained policy's answers are all wrong; their lengths in characters differ.
  FunctionReward length(
      [](const std::string&, const std::string& c) { return static_cast<double>(c.size()); });
  ScoreJudge judge(length);
  Transformer policy = clone_model(initial);
  policy.set_requires_grad(true);
  OnlineDpoTask task(policy, reference, sort_tokenizer(), sort_prompts(16, 5), judge,
                     small_options());
  const MicroBatchResult r = task.micro_batch(0, 0, 1.0);
  auto get = [&](const std::string& name) {
    for (auto& [k, v] : r.metrics)
      if (k == name) return v;
    ADD_FAILURE() << "no metric " << name;
    return -1.0;
  };
  const double pairs = get("judge/pairs");
  ASSERT_GT(pairs, 0);
  EXPECT_NEAR(r.loss, std::log(2.0), 1e-6);
  EXPECT_NEAR(get("objective/kl"), 0.0, 1e-6);
  EXPECT_NEAR(get("judge/skipped_fraction"), (4 - pairs) / 4, 1e-12);
  EXPECT_GT(get("objective/scores_margin"), 0.0);  // the chosen sample scored higher
  const double eos = get("val/contain_eos_token");
  EXPECT_GE(eos, 0.0);
  EXPECT_LE(eos, 1.0);
}

// Mean positional accuracy of the greedy answers to `prompts`.
double greedy_accuracy(const Transformer& model, const std::vector<std::string>& prompts) {
  const std::vector<std::string> answers =
      greedy_completions(model, sort_tokenizer(), sort_template(), prompts);
  double sum = 0.0;
  for (size_t i = 0; i < prompts.size(); ++i) sum += positional_accuracy(prompts[i], answers[i]);
  return sum / static_cast<double>(prompts.size());
}

TEST(OnlineDpo, LearningRaisesTheJudgedAccuracy) {
  const auto t0 = std::chrono::steady_clock::now();
  const Transformer sft = sft_policy(kLearnSftSteps, 1);
  const std::vector<std::string> held_out = sort_prompts(200, 99, SortSplit::test);
  const double em_before = exact_match(sft, sort_tokenizer(), sort_template(), held_out);
  const double acc_before = greedy_accuracy(sft, held_out);
  FunctionReward accuracy(
      [](const std::string& p, const std::string& c) { return positional_accuracy(p, c); });
  ScoreJudge judge(accuracy);
  OnlineDpoOptions o = small_options();
  o.batch_prompts = 16;
  Transformer policy = clone_model(sft);
  policy.set_requires_grad(true);
  OnlineDpoTask task(policy, sft, sort_tokenizer(), sort_prompts(400, 7, SortSplit::train), judge,
                     o);
  TrainerOptions t;
  t.out_dir = temp_dir("learn");
  t.steps = kLearnSteps;
  t.schedule.kind = "constant";
  t.schedule.lr = kLearnLr;
  t.schedule.warmup = 2;
  t.adamw.weight_decay = 0.0;
  t.label = "online dpo (sort task)";
  TrainResult result = rlaif::train(policy, task, t);
  fs::remove_all(t.out_dir);
  const double em_after = exact_match(policy, sort_tokenizer(), sort_template(), held_out);
  const double acc_after = greedy_accuracy(policy, held_out);
  std::printf(
      "online dpo sort task: greedy positional accuracy %.3f -> %.3f, exact match %.3f -> %.3f "
      "(%.1f s)\n",
      acc_before, acc_after, em_before, em_after,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  EXPECT_GT(acc_after, acc_before + kLearnMinGain);
  EXPECT_GE(em_after, em_before);
}

}  // namespace
}  // namespace rlaif
