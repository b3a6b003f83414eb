// The gradient buckets of algorithms/gradient_buckets.h as DataParallelOptimizer::overlap_backward
// drives them, on one rank, through a communicator that behaves like
// NCCL's started collectives: a started collective's tensors hold garbage until wait(), and a
// buffer written while its collective is in flight is caught. The reduction must start buckets
// during the backward pass, last bucket first, and give bitwise the weights of the same training
// without overlap (both stages, tiny buckets so parameters straddle them, gradient accumulation,
// a tied weight, a checkpointed block, and a parameter without a gradient).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/data_parallel_optimizer.h"
#include "autograd/checkpoint.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "tests/algorithms/in_flight_communicator.h"

namespace rlaif {
namespace {

using Params = std::vector<std::pair<std::string, Variable>>;

using test::InFlightCommunicator;

// A tiny network: three layers, the first weight tied to the output projection (GPT-2's
// embedding and LM head), the middle layer checkpointed, and `spare` never used (no gradient).
struct Net {
  Params params;
  explicit Net(uint64_t seed) {
    const std::vector<std::pair<std::string, Shape>> shapes = {
        {"w1", {6, 4}}, {"b1", {6}}, {"w2", {6, 6}}, {"b2", {6}}, {"spare", {5}}, {"w3", {6, 6}}};
    for (size_t i = 0; i < shapes.size(); ++i) {
      Tensor t = Tensor::empty(shapes[i].second, DType::f32);
      backend_for(Device::cpu()).random_normal(t, seed, i * 1000, 0.0f, 0.5f);
      params.emplace_back(shapes[i].first, Variable(t, true, shapes[i].first));
    }
  }
  const Variable& p(size_t i) const { return params[i].second; }
  // Loss of batch (step, micro), scaled for accumulation over `accum` micro-batches.
  Variable loss(int64_t step, int64_t micro, int64_t accum) const {
    Tensor x = Tensor::empty({3, 4}, DType::f32);
    backend_for(Device::cpu()).random_normal(x, 99, static_cast<uint64_t>(step * 10 + micro), 0, 1);
    Variable h = tanh(linear(Variable(x), p(0), p(1)));
    h = checkpoint(
        [](const std::vector<Variable>& in) { return tanh(linear(in[0], in[1], in[2])); },
        {h, p(2), p(3)});
    h = tanh(linear(h, p(5)));
    Variable out = matmul(h, p(0));  // w1 again: [3, 6] · [6, 4]
    return scale(mean_all(square(out)), 1.0f / static_cast<float>(accum));
  }
};

std::vector<float> weights(const Net& net) {
  std::vector<float> out;
  for (const auto& [name, p] : net.params) {
    std::vector<float> v = p.data().to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// Trains `steps` steps of `accum` micro-batches; with `overlap`, the last micro-batch's backward
// runs under overlap_backward().
void train(Net& net, DataParallelOptimizer& opt, InFlightCommunicator* comm, bool overlap,
           int steps, int accum) {
  for (int64_t step = 0; step < steps; ++step) {
    for (int64_t micro = 0; micro < accum; ++micro) {
      std::optional<GradientReadyScope> scope;
      if (overlap && micro + 1 == accum) scope.emplace(opt.overlap_backward());
      Variable loss = net.loss(step, micro, accum);
      if (comm) comm->in_backward = 1;
      loss.backward();
      if (comm) comm->in_backward = -1;
    }
    const double norm = opt.reduce_gradients(step % 2 ? 0.05 : 0.0);  // clip on odd steps
    EXPECT_TRUE(std::isfinite(norm));
    if (comm) {
      EXPECT_TRUE(comm->all_done()) << "reduce_gradients returned before waiting";
    }
    opt.step(1e-2);
    opt.zero_grad();
  }
}

class OverlapBackward : public ::testing::TestWithParam<int> {};

TEST_P(OverlapBackward, StartsBucketsDuringBackwardWithTheSameResult) {
  const int stage = GetParam();
  const size_t bucket_bytes = 4 * 10;  // 10 elements: most parameters straddle two buckets
  Net reference(3), plain(3), overlapped(3);
  SingleProcessCommunicator one;
  InFlightCommunicator plain_comm, overlap_comm;
  DataParallelOptimizer reference_opt(reference.params, {}, one, 0);  // plain AdamW + clipping
  DataParallelOptimizer plain_opt(plain.params, {}, plain_comm, stage, bucket_bytes);
  DataParallelOptimizer overlap_opt(overlapped.params, {}, overlap_comm, stage, bucket_bytes);
  train(reference, reference_opt, nullptr, false, 4, 2);
  train(plain, plain_opt, &plain_comm, false, 4, 2);
  train(overlapped, overlap_opt, &overlap_comm, true, 4, 2);

  EXPECT_EQ(weights(overlapped), weights(plain));
  EXPECT_EQ(weights(overlapped), weights(reference));
  EXPECT_EQ(overlapped.p(4).data().to_vector<float>(), Net(3).p(4).data().to_vector<float>())
      << "the parameter without a gradient must not move";
  EXPECT_TRUE(overlap_comm.problems.empty()) << overlap_comm.problems.front();
  EXPECT_TRUE(plain_comm.problems.empty()) << plain_comm.problems.front();

  // 6·4 + 6 + 36 + 6 + 5 + 36 = 113 elements: 12 buckets of 10, reduced per step.
  const size_t buckets = 12;
  ASSERT_EQ(overlap_comm.log.size(), 4 * buckets);
  ASSERT_EQ(plain_comm.log.size(), 4 * buckets);
  size_t during = 0;
  for (const auto& s : overlap_comm.log) during += s.during_backward == 1;
  for (const auto& s : plain_comm.log) EXPECT_EQ(s.during_backward, -1);
  // Flat layout: w1 [0, 24), b1 [24, 30), w2 [30, 66), b2 [66, 72), spare [72, 77),
  // w3 [77, 113). The backward pass finishes w3 after its first two nodes, so buckets 11 to 8
  // (w3 alone) go out during the pass; bucket 7 holds spare, which never gets a gradient, so it
  // and every bucket below wait for reduce_gradients() (w2 and b2, final once the checkpointed
  // block has run, and the tied w1, final only at the very end, would wait anyway).
  EXPECT_EQ(during, 4 * 4u) << "buckets 11 to 8 must start while backward() runs";
  // Buckets go out last first: every step's collectives walk down the flat vector.
  for (size_t step = 0; step < 4; ++step) {
    for (size_t k = 1; k < buckets; ++k) {
      const auto& before = overlap_comm.log[step * buckets + k - 1];
      const auto& after = overlap_comm.log[step * buckets + k];
      if (stage == 1) {  // the reduce-scatter outputs are consecutive shard slices
        EXPECT_GT(before.output.raw_data(), after.output.raw_data()) << "step " << step;
      }
      EXPECT_NE(before.input.raw_data(), after.input.raw_data())
          << "consecutive buckets share a buffer in flight";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Stages, OverlapBackward, ::testing::Values(0, 1),
                         [](const auto& info) { return "zero" + std::to_string(info.param); });

TEST(OverlapBackwardErrors, TwoBackwardPassesInOneScopeThrow) {
  Net net(5);
  InFlightCommunicator comm;
  DataParallelOptimizer opt(net.params, {}, comm, 0, 40);
  GradientReadyScope scope = opt.overlap_backward();
  net.loss(0, 0, 2).backward();
  try {
    net.loss(0, 1, 2).backward();
    ADD_FAILURE() << "a gradient changed after it was sent";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("reported final twice"), std::string::npos) << e.what();
  }
}

TEST(OverlapBackwardErrors, AnAbandonedStepLeavesNothingBehind) {
  // A step whose backward pass started buckets but never reached reduce_gradients() (an
  // exception in between): the next step must not see that step's collectives' results.
  for (int stage : {0, 1}) {
    Net clean(9), abandoned(9);
    InFlightCommunicator clean_comm, abandoned_comm;
    DataParallelOptimizer clean_opt(clean.params, {}, clean_comm, stage, 40);
    DataParallelOptimizer abandoned_opt(abandoned.params, {}, abandoned_comm, stage, 40);
    {
      GradientReadyScope scope = abandoned_opt.overlap_backward();
      abandoned.loss(7, 0, 1).backward();  // other data: other gradients in flight
    }
    ASSERT_FALSE(abandoned_comm.log.empty()) << "stage " << stage;
    abandoned_opt.zero_grad();
    train(clean, clean_opt, &clean_comm, true, 2, 1);
    train(abandoned, abandoned_opt, &abandoned_comm, true, 2, 1);
    EXPECT_EQ(weights(abandoned), weights(clean)) << "stage " << stage;
    EXPECT_TRUE(abandoned_comm.problems.empty()) << abandoned_comm.problems.front();
  }
}

TEST(OverlapBackwardErrors, OneProcessHasNothingToOverlap) {
  Net a(7), b(7);
  SingleProcessCommunicator one;
  DataParallelOptimizer opt_a(a.params, {}, one, 0), opt_b(b.params, {}, one, 0);
  train(a, opt_a, nullptr, true, 2, 1);  // the scope does nothing
  train(b, opt_b, nullptr, false, 2, 1);
  EXPECT_EQ(weights(a), weights(b));
}

}  // namespace
}  // namespace rlaif
