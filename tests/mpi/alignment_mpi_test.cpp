// Data-parallel reward modelling, DPO and PPO over real ranks. CTest starts this program with
//   mpirun --oversubscribe --allow-run-as-root -np N alignment_mpi_test   (N = 2 and 3)
// and every rank runs every test, making the same collective calls. Each test compares what the
// N ranks compute together with what this process computes alone (a SingleProcessCommunicator,
// in the same process, so with the same threads): the gathered rollout, rank 0's critic scores,
// the reference log-prob tables computed in slices, and whole PPO runs (N ranks with ZeRO-1
// against one rank with replicated AdamW).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <string>
#include <tuple>
#include <vector>

#include "algorithms/dpo.h"
#include "algorithms/ppo.h"
#include "algorithms/ppo_data_parallel.h"
#include "algorithms/reward.h"
#include "runtime/communicator.h"
#include "tests/algorithms/preference_test_util.h"
#include "tests/mpi/mpi_test_main.h"

namespace rlaif {
namespace {

using namespace rlaif::testing;
namespace fs = std::filesystem;

Communicator& world() {
  return world_communicator();
}

// A directory name every rank agrees on (rank 0's pid), for files rank 0 alone writes.
std::string shared_dir(const std::string& name) {
  Tensor pid = Tensor::from_vector(std::vector<int64_t>{static_cast<int64_t>(::getpid())}, {1});
  world().broadcast(pid, 0);
  return (fs::temp_directory_path() /
          ("rlaif_alignment_mpi_" + std::to_string(pid.to_vector<int64_t>()[0]) + "_" + name))
      .string();
}

// This rank's own directory (for runs every rank makes alone).
std::string own_dir(const std::string& name) {
  return (fs::temp_directory_path() /
          ("rlaif_alignment_mpi_" + std::to_string(::getpid()) + "_own_" + name))
      .string();
}

Sample synthetic_sample(int64_t i) {
  Generator gen(23, static_cast<uint64_t>(i) << 20);
  Sample s;
  s.prompt_index = i;
  s.tokens.prompt = {1, static_cast<int32_t>(10 + i)};
  const auto L = static_cast<size_t>(1 + (i * 7) % 5);
  for (size_t t = 0; t < L; ++t) {
    s.tokens.completion.push_back(static_cast<int32_t>(3 + gen.below(400)));
    s.logprobs.push_back(-static_cast<float>(gen.uniform()));
    s.ref_logprobs.push_back(-static_cast<float>(gen.uniform()));
    s.values.push_back(static_cast<float>(gen.uniform()));
  }
  s.eos = i % 2 == 0;
  s.score = gen.uniform() + 1e-12 * static_cast<double>(i);
  s.entropy = gen.uniform() * 5;
  return s;
}

TEST(AlignmentMpi, GatherRolloutGivesEveryRankEverySample) {
  const int R = world().size();
  const int64_t S = 2 * R;
  Rollout rollout;
  rollout.samples.resize(static_cast<size_t>(S));
  const SequenceRange mine = rank_sequences(S, world().rank(), R);
  for (int64_t i = 0; i < S; ++i) {
    Sample full = synthetic_sample(i);
    Sample& s = rollout.samples[static_cast<size_t>(i)];
    s.prompt_index = full.prompt_index;
    s.tokens.prompt = full.tokens.prompt;
    if (i >= mine.first && i < mine.first + mine.count) s = full;
  }
  gather_rollout(rollout, world(), sort_tokenizer());
  for (int64_t i = 0; i < S; ++i) {
    const Sample want = synthetic_sample(i);
    const Sample& got = rollout.samples[static_cast<size_t>(i)];
    EXPECT_EQ(got.tokens.prompt, want.tokens.prompt) << i;
    EXPECT_EQ(got.tokens.completion, want.tokens.completion) << i;
    EXPECT_EQ(got.logprobs, want.logprobs) << i;
    EXPECT_EQ(got.ref_logprobs, want.ref_logprobs) << i;
    EXPECT_EQ(got.values, want.values) << i;
    EXPECT_EQ(got.eos, want.eos) << i;
    EXPECT_EQ(got.score, want.score) << i;
    EXPECT_EQ(got.entropy, want.entropy) << i;
    if (i < mine.first || i >= mine.first + mine.count) {
      EXPECT_EQ(got.completion, sort_tokenizer().decode(want.tokens.completion)) << i;
    }
  }
  // Every rank's scores become rank 0's, bit for bit.
  for (Sample& s : rollout.samples) s.score = world().rank() == 0 ? s.score : -1.0;
  broadcast_scores(rollout, world());
  for (int64_t i = 0; i < S; ++i) {
    EXPECT_EQ(rollout.samples[static_cast<size_t>(i)].score, synthetic_sample(i).score);
  }
}

// A reward that counts what it is asked; optionally one that scores on rank 0 only.
class CountingReward : public RewardFunction {
 public:
  explicit CountingReward(bool lead_only) : lead_only_(lead_only) {}
  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& completions) override {
    ++calls;
    items += static_cast<int64_t>(completions.size());
    std::vector<double> out;
    for (size_t i = 0; i < prompts.size(); ++i) {
      out.push_back(positional_accuracy(prompts[i], completions[i]) +
                    0.01 * static_cast<double>(completions[i].size()));
    }
    return out;
  }
  bool scores_on_lead_rank() const override { return lead_only_; }
  int64_t calls = 0, items = 0;

 private:
  bool lead_only_;
};

TEST(AlignmentMpi, ShardedRolloutIsTheOneRankRollout) {
  const int R = world().size();
  Transformer policy = sort_initial_policy(4);
  Transformer reference = clone_model(policy);
  Transformer value = clone_model(policy);
  ensure_scalar_head(value, 4);
  const std::vector<std::string> prompts = sort_prompts(10, 21);
  PpoOptions o;
  o.advantage = AdvantageKind::gae;
  o.batch_prompts = R;
  o.samples_per_prompt = 2;
  o.max_new_tokens = 5;
  o.missing_eos_penalty = 0.5;
  o.forward_batch = 3;
  o.seed = 9;
  for (bool lead_only : {false, true}) {
    CountingReward alone_reward(lead_only);
    RolloutModels alone_models{&policy, &reference, &value, &sort_tokenizer(), &alone_reward};
    const Rollout want = collect_rollout(alone_models, prompts, 1, o);  // this process alone

    CountingReward reward(lead_only);
    LeadRankScores stand_in;
    RewardFunction* r =
        lead_only && world().rank() != 0 ? static_cast<RewardFunction*>(&stand_in) : &reward;
    RolloutModels models{&policy, &reference, &value, &sort_tokenizer(), r};
    const Rollout got = collect_rollout(models, prompts, 1, o, &world());
    if (lead_only) {  // rank 0 asked once for every sequence; the others never asked
      EXPECT_EQ(reward.calls, world().rank() == 0 ? 1 : 0);
      EXPECT_EQ(reward.items, world().rank() == 0 ? 2 * R : 0);
    } else {  // each rank asked for its own 2 sequences
      EXPECT_EQ(reward.items, 2);
    }
    // EXPECT, not ASSERT, before a collective: a rank leaving the test early would hang the rest.
    EXPECT_EQ(got.samples.size(), want.samples.size());
    for (size_t i = 0; i < want.samples.size() && i < got.samples.size(); ++i) {
      const Sample &g = got.samples[i], &w = want.samples[i];
      EXPECT_EQ(g.tokens.completion, w.tokens.completion) << i;
      EXPECT_EQ(g.completion, w.completion) << i;
      EXPECT_EQ(g.eos, w.eos) << i;
      EXPECT_EQ(g.score, w.score) << i;
      EXPECT_EQ(g.logprobs.size(), w.logprobs.size()) << i;
      if (g.logprobs.size() != w.logprobs.size() || g.values.size() != w.values.size()) continue;
      for (size_t t = 0; t < w.logprobs.size(); ++t) {
        EXPECT_NEAR(g.logprobs[t], w.logprobs[t], 1e-5) << i;
        EXPECT_NEAR(g.ref_logprobs[t], w.ref_logprobs[t], 1e-5) << i;
        EXPECT_NEAR(g.values[t], w.values[t], 1e-5) << i;
      }
      EXPECT_NEAR(g.entropy, w.entropy, 1e-4) << i;
    }
  }
}

TEST(AlignmentMpi, ReferenceTablesInSlicesAreTheWholeTables) {
  Transformer reference = sort_initial_policy(8);
  const std::vector<TokenizedPair> train = sort_tokenized_pairs(11, 3, SortSplit::train),
                                   val = sort_tokenized_pairs(3, 4, SortSplit::test);
  const RefLogprobs want_train = compute_ref_logprobs(reference, train, 2),
                    want_val = compute_ref_logprobs(reference, val, 2);
  const std::string dir = shared_dir("ref");
  const std::string cache = dir + "/ref_logprobs.safetensors";
  for (bool second : {false, true}) {
    bool reused = !second;
    auto [got_train, got_val] =
        cached_ref_logprobs(cache, reference, train, val, 2, &reused, &world());
    EXPECT_EQ(reused, second);
    world().barrier();  // rank 0 has written the file
    EXPECT_TRUE(fs::exists(cache));
    for (auto [got, want] : {std::pair{&got_train, &want_train}, std::pair{&got_val, &want_val}}) {
      EXPECT_EQ(got->size(), want->size());
      for (size_t i = 0; i < want->size() && i < got->size(); ++i) {
        EXPECT_NEAR(got->chosen_sum[i], want->chosen_sum[i], 1e-5) << i;
        EXPECT_NEAR(got->rejected_sum[i], want->rejected_sum[i], 1e-5) << i;
        EXPECT_NEAR(got->chosen_avg[i], want->chosen_avg[i], 1e-6) << i;
        EXPECT_NEAR(got->rejected_avg[i], want->rejected_avg[i], 1e-6) << i;
      }
    }
  }
  world().barrier();
  if (world().rank() == 0) fs::remove_all(dir);
}

struct PpoRunResult {
  std::vector<float> policy, value;
  PpoResult result;
};

std::vector<float> weights(const Transformer& model) {
  std::vector<float> out;
  for (auto& [name, p] : model.parameters()) {
    std::vector<float> v = p.data().to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// Two steps of PPO (gae, two mini-batches of R sequences, two micro-batches each) on `comm`.
PpoRunResult run_ppo(Communicator& comm, int zero_stage, const std::string& out) {
  const int R = world().size();
  const Transformer initial = sort_initial_policy(6);
  Transformer policy = clone_model(initial), reference = clone_model(initial);
  Transformer value = clone_model(initial);
  ensure_scalar_head(value, 6);
  policy.set_requires_grad(true);
  value.set_requires_grad(true);
  reference.set_requires_grad(false);
  FunctionReward reward(
      [](const std::string& p, const std::string& c) { return positional_accuracy(p, c); });
  PpoOptions o;
  o.advantage = AdvantageKind::gae;
  o.batch_prompts = 2 * R;
  o.samples_per_prompt = 2;
  o.max_new_tokens = 4;
  o.ppo_epochs = 2;
  o.mini_batches = 2;
  o.whiten_rewards = true;
  o.adaptive_kl_target = 0.01;
  o.seed = 5;
  TrainerOptions t;
  t.out_dir = out;
  t.steps = 2;
  t.grad_accum = 2;
  t.schedule.lr = 1e-3;
  t.comm = &comm;
  t.zero_stage = zero_stage;
  PpoModels models{&policy, &reference, &value, &sort_tokenizer(), &reward};
  PpoRunResult r;
  r.result = train_ppo(models, sort_prompts(12, 31), o, t);
  r.policy = weights(policy);
  r.value = weights(value);
  return r;
}

TEST(AlignmentMpi, PpoOnAllRanksIsPpoOnOne) {
  SingleProcessCommunicator alone;
  const std::string own = own_dir("ppo"), shared = shared_dir("ppo");
  const PpoRunResult want = run_ppo(alone, 0, own);
  const PpoRunResult got = run_ppo(world(), 1, shared);
  EXPECT_EQ(got.result.steps_done, 2);
  EXPECT_NEAR(got.result.kl_coef, want.result.kl_coef, 1e-9);
  EXPECT_EQ(got.result.last_metrics.size(), want.result.last_metrics.size());
  for (size_t i = 0; i < want.result.last_metrics.size() && i < got.result.last_metrics.size();
       ++i) {
    const auto& [name, w] = want.result.last_metrics[i];
    EXPECT_EQ(got.result.last_metrics[i].first, name);
    if (name.ends_with("_per_s") || name == "elapsed_s" || name.starts_with("time/") ||
        name == "kl" || name == "advantage_mean" || name == "non_score_reward")
      continue;  // timings; differences of nearly equal log-probs
    EXPECT_NEAR(got.result.last_metrics[i].second, w, 1e-5 * std::max(0.01, std::fabs(w))) << name;
  }
  // The weights: AdamW divides by √v, so where a gradient is near 0 its rounding moves the update
  // by up to 2·lr; measured against how far the weights moved (8 updates of lr 1e-3).
  Transformer initial_value = sort_initial_policy(6);
  ensure_scalar_head(initial_value, 6);
  const std::vector<float> start_policy = weights(sort_initial_policy(6)),
                           start_value = weights(initial_value);
  for (auto [g, w, start] : {std::tuple{&got.policy, &want.policy, &start_policy},
                             std::tuple{&got.value, &want.value, &start_value}}) {
    EXPECT_EQ(g->size(), w->size());
    if (g->size() != w->size() || start->size() != w->size()) continue;
    double diff = 0, moved = 0;
    for (size_t i = 0; i < w->size(); ++i) {
      diff = std::max(diff, std::fabs(static_cast<double>((*g)[i]) - (*w)[i]));
      moved = std::max(moved, std::fabs(static_cast<double>((*w)[i]) - (*start)[i]));
    }
    EXPECT_GT(moved, 1e-3);  // the runs did train
    EXPECT_LT(diff, 1e-2 * moved);
  }
  // Rank 0 alone wrote the run's files; every rank wrote its own one-rank run.
  world().barrier();
  EXPECT_EQ(fs::exists(shared + "/model.safetensors"), true);
  EXPECT_TRUE(fs::exists(own + "/model.safetensors"));
  fs::remove_all(own);
  world().barrier();
  if (world().rank() == 0) fs::remove_all(shared);
}

}  // namespace
}  // namespace rlaif

int main(int argc, char** argv) {
  return rlaif::run_mpi_tests(argc, argv, "alignment_mpi_test");
}
