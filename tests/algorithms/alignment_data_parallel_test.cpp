// Data parallelism of reward modelling and DPO, in one process: the sharded tasks whose rank-mean
// gradients are the one-rank gradient (ranks simulated by running each rank's task on one model,
// each backward scaled by 1/R as the gradient mean weighs it). The shard selections are in
// preference_data_test.cpp, PPO's in ppo_data_parallel_test.cpp; the collectives themselves run
// over real ranks in tests/mpi/alignment_mpi_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "algorithms/dpo.h"
#include "algorithms/ppo_data_parallel.h"
#include "algorithms/reward.h"
#include "runtime/rng.h"
#include "tests/algorithms/preference_test_util.h"
#include "tests/error_of.h"

namespace rlaif {
namespace {

using test::error_of;

using namespace rlaif::testing;

std::vector<TokenizedPair> four_pairs() {
  std::vector<TokenizedPair> pairs = preference_tiny_pairs();
  pairs.push_back({{{1, 3}, {5, 5, 2}}, {{1, 3}, {6, 2}}, 0.25});
  return pairs;
}

std::vector<float> gradients(const Transformer& model) {
  std::vector<float> out;
  for (auto& [name, p] : model.parameters()) {
    if (!p.grad().defined()) continue;
    std::vector<float> g = p.grad().to_vector<float>();
    out.insert(out.end(), g.begin(), g.end());
  }
  return out;
}

void zero_grads(Transformer& model) {
  for (auto& [name, p] : model.parameters()) p.zero_grad();
}

// What the trainer does on R ranks, in one process: every rank's micro-batch (losses and metrics
// averaged, gradients accumulated with scale 1/R, i.e. their mean) against one rank's.
template <typename MakeTask>
void expect_rank_mean_is_one_rank(Transformer& model, MakeTask make_task, int ranks) {
  zero_grads(model);
  auto one = make_task(0, 1);
  const MicroBatchResult whole = one->micro_batch(0, 0, 1.0);
  const std::vector<float> whole_grad = gradients(model);
  zero_grads(model);
  double loss = 0.0;
  std::vector<double> metrics(whole.metrics.size(), 0.0);
  int64_t tokens = 0;
  for (int r = 0; r < ranks; ++r) {
    auto task = make_task(r, ranks);
    const MicroBatchResult part = task->micro_batch(0, 0, 1.0 / ranks);
    loss += part.loss / ranks;
    ASSERT_EQ(part.metrics.size(), metrics.size());
    for (size_t i = 0; i < metrics.size(); ++i) metrics[i] += part.metrics[i].second / ranks;
    tokens += part.tokens;
  }
  EXPECT_NEAR(loss, whole.loss, 1e-6 * std::fabs(whole.loss));
  EXPECT_EQ(tokens, whole.tokens);  // each pair trained once, by one rank
  for (size_t i = 0; i < metrics.size(); ++i) {
    EXPECT_NEAR(metrics[i], whole.metrics[i].second, 1e-5 * (1 + std::fabs(metrics[i])))
        << whole.metrics[i].first;
  }
  const std::vector<float> mean_grad = gradients(model);
  ASSERT_EQ(mean_grad.size(), whole_grad.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < mean_grad.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(mean_grad[i]) - whole_grad[i]));
    norm = std::max(norm, std::fabs(static_cast<double>(whole_grad[i])));
  }
  EXPECT_GT(norm, 1e-3);
  EXPECT_LT(diff, 1e-5 * norm);
}

TEST(RewardDataParallel, RankMeanOfShardsIsTheWholeMicroBatch) {
  ModelConfig config = preference_tiny_config();
  config.num_labels = 1;
  Transformer model(config);
  model.init_weights(9);
  model.set_requires_grad(true);
  auto make = [&](int rank, int ranks) {
    RewardOptions o;
    o.batch = 4;
    o.use_margin = true;
    o.center_coef = 0.05;
    o.rank = rank;
    o.ranks = ranks;
    return std::make_unique<RewardTask>(model, four_pairs(), std::vector<TokenizedPair>{}, o);
  };
  expect_rank_mean_is_one_rank(model, make, 2);
  expect_rank_mean_is_one_rank(model, make, 4);
  EXPECT_NE(error_of([&] { make(0, 3); }).find("rm: --batch 4 is not divisible by the 3"),
            std::string::npos);
}

TEST(DpoDataParallel, RankMeanOfShardsIsTheWholeMicroBatch) {
  Transformer policy(preference_tiny_config()), reference(preference_tiny_config());
  policy.init_weights(3);
  reference.init_weights(4);  // another model, so the margins are not 0
  policy.set_requires_grad(true);
  for (DpoLoss loss : {DpoLoss::sigmoid, DpoLoss::ipo}) {
    auto make = [&](int rank, int ranks) {
      DpoOptions o;
      o.batch = 4;
      o.loss = loss;
      o.rank = rank;
      o.ranks = ranks;
      DpoReference ref;
      ref.model = &reference;
      return std::make_unique<DpoTask>(policy, ref, four_pairs(), std::vector<TokenizedPair>{}, o);
    };
    expect_rank_mean_is_one_rank(policy, make, 2);
  }
}

}  // namespace
}  // namespace rlaif
