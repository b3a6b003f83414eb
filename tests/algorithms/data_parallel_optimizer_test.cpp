// DataParallelOptimizer on one rank (tests/mpi/zero_optimizer_mpi_test.cpp runs it on 2 and 3):
// ZeRO-1 must make exactly stage 0's updates, stage 0 on one rank must be exactly AdamW plus
// clip_grad_norm, and the state must round-trip through AdamW's checkpoint format.
#include "algorithms/data_parallel_optimizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/grad_clip.h"
#include "kernels/backend.h"

namespace rlaif {
namespace {

using Params = std::vector<std::pair<std::string, Variable>>;

// Shapes whose sizes split unevenly over any chunking, plus a vector (no weight decay).
const std::vector<Shape> kShapes = {{7, 5}, {13}, {3, 4, 2}, {1}, {6, 6}};

Params make_params(uint64_t seed) {
  Params params;
  for (size_t i = 0; i < kShapes.size(); ++i) {
    Tensor t = Tensor::empty(kShapes[i], DType::f32);
    backend_for(Device::cpu()).random_normal(t, seed, i * 1000, 0.0f, 1.0f);
    std::string name = "p";  // (not "p" + to_string: GCC 12 warns falsely, -Wrestrict)
    name += std::to_string(i);
    params.emplace_back(name, Variable(t, true));
  }
  return params;
}

// Step `step`'s gradients; parameter `skip` gets none (it must then stay untouched).
void set_grads(Params& params, int64_t step, size_t skip) {
  for (size_t i = 0; i < params.size(); ++i) {
    if (i == skip) {
      params[i].second.zero_grad();
      continue;
    }
    Tensor g = Tensor::empty(params[i].second.shape(), DType::f32);
    backend_for(Device::cpu())
        .random_normal(g, 77, static_cast<uint64_t>(step * 100000 + i * 1000), 0.0f, 2.0f);
    params[i].second.set_grad(g);
  }
}

std::vector<float> values(const Variable& v) {
  return v.data().to_vector<float>();
}

TEST(DataParallelOptimizer, ZeroOneMakesStageZerosUpdatesBitForBit) {
  SingleProcessCommunicator comm;
  Params a = make_params(1), b = make_params(1);
  const std::vector<float> skipped_before = values(a[3].second);
  DataParallelOptimizer zero0(a, {}, comm, 0), zero1(b, {}, comm, 1);
  for (int64_t step = 0; step < 5; ++step) {
    set_grads(a, step, 3);
    set_grads(b, step, 3);
    // max_norm 3 clips some steps and not others (the gradients' norm is about 2·√100 = 20
    // at first): both branches of the rule run.
    const double norm0 = zero0.reduce_gradients(step % 2 ? 3.0 : 100.0);
    const double norm1 = zero1.reduce_gradients(step % 2 ? 3.0 : 100.0);
    EXPECT_EQ(norm0, norm1) << "step " << step;
    EXPECT_GT(norm0, 3.0);
    zero0.step(1e-2);
    zero1.step(1e-2);
    zero0.zero_grad();
    zero1.zero_grad();
    for (size_t i = 0; i < a.size(); ++i)
      ASSERT_EQ(values(a[i].second), values(b[i].second)) << a[i].first << " after step " << step;
  }
  EXPECT_EQ(values(a[3].second), skipped_before) << "a parameter without gradients was updated";
  EXPECT_EQ(zero1.step_count(), 5);
  const auto s0 = zero0.state(), s1 = zero1.state();
  ASSERT_EQ(s0.size(), s1.size());
  for (size_t i = 0; i < s0.size(); ++i) {
    EXPECT_EQ(s0[i].first, s1[i].first);
    EXPECT_EQ(s0[i].second.shape(), s1[i].second.shape());
    EXPECT_EQ(s0[i].second.to_vector<float>(), s1[i].second.to_vector<float>()) << s0[i].first;
  }
  // One rank holds the whole state either way: 2 f32 moments per element.
  EXPECT_EQ(zero0.state_bytes(), 2 * 4 * (35 + 13 + 24 + 1 + 36));
  EXPECT_EQ(zero1.state_bytes(), zero0.state_bytes());
}

// Buckets of 8 f32 elements: every parameter but the 1-element one spans several buckets, and the
// stage-0 all-reduce packs several gradients per bucket. Stage 1 sums a parameter's Σg² over its
// pieces, so the clipping coefficient (and only it) may differ in the last bits.
TEST(DataParallelOptimizer, ManySmallBucketsGiveTheSameUpdates) {
  SingleProcessCommunicator comm;
  Params a = make_params(5), b = make_params(5);
  DataParallelOptimizer zero0(a, {}, comm, 0), zero1(b, {}, comm, 1, 32);
  for (int64_t step = 0; step < 4; ++step) {
    set_grads(a, step, 2);
    set_grads(b, step, 2);
    const double norm0 = zero0.reduce_gradients(3.0), norm1 = zero1.reduce_gradients(3.0);
    EXPECT_NEAR(norm0, norm1, 1e-6 * norm0);
    zero0.step(1e-2);
    zero1.step(1e-2);
  }
  for (size_t i = 0; i < a.size(); ++i) {
    const std::vector<float> x = values(a[i].second), y = values(b[i].second);
    for (size_t j = 0; j < x.size(); ++j)
      ASSERT_NEAR(x[j], y[j], 1e-6f * std::max(1.0f, std::fabs(x[j])))
          << a[i].first << "[" << j << "]";
  }
  // The shard is whole buckets: ⌈109 / 8⌉ = 14 buckets of 8, 2 moments of 4 bytes.
  EXPECT_EQ(zero1.state_bytes(), 14 * 8 * 2 * 4);
  const auto s0 = zero0.state(), s1 = zero1.state();
  ASSERT_EQ(s0.size(), s1.size());
  for (size_t i = 0; i < s0.size(); ++i) {
    const std::vector<float> x = s0[i].second.to_vector<float>(),
                             y = s1[i].second.to_vector<float>();
    for (size_t j = 0; j < x.size(); ++j)
      ASSERT_NEAR(x[j], y[j], 1e-5f * std::max(1e-3f, std::fabs(x[j])))
          << s0[i].first << "[" << j << "]";
  }
}

TEST(DataParallelOptimizer, StageZeroOnOneRankIsAdamWWithClipping) {
  SingleProcessCommunicator comm;
  Params a = make_params(2), b = make_params(2);
  DataParallelOptimizer dp(a, {}, comm, 0);
  AdamW plain(b);
  for (int64_t step = 0; step < 3; ++step) {
    set_grads(a, step, 99);
    set_grads(b, step, 99);
    EXPECT_EQ(dp.reduce_gradients(1.0), clip_grad_norm(b, 1.0));
    dp.step(3e-3);
    plain.step(3e-3);
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(values(a[i].second), values(b[i].second));
}

TEST(DataParallelOptimizer, ShardedStateResumesFromAnyStage) {
  SingleProcessCommunicator comm;
  Params a = make_params(3), b = make_params(3);
  DataParallelOptimizer first(a, {}, comm, 0);
  for (int64_t step = 0; step < 2; ++step) {
    set_grads(a, step, 99);
    first.reduce_gradients(1.0);
    first.step(1e-2);
  }
  // b continues a's run from its checkpoint under ZeRO-1; a continues under stage 0.
  for (size_t i = 0; i < a.size(); ++i) b[i].second.data().copy_from(a[i].second.data());
  DataParallelOptimizer resumed(b, {}, comm, 1);
  resumed.load_state(first.state(), first.step_count());
  EXPECT_EQ(resumed.step_count(), 2);
  for (int64_t step = 2; step < 4; ++step) {
    set_grads(a, step, 99);
    set_grads(b, step, 99);
    first.reduce_gradients(1.0);
    resumed.reduce_gradients(1.0);
    first.step(1e-2);
    resumed.step(1e-2);
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(values(a[i].second), values(b[i].second));
}

TEST(DataParallelOptimizer, RefusesWhatItCannotDo) {
  SingleProcessCommunicator comm;
  Params a = make_params(4);
  try {
    DataParallelOptimizer bad(a, {}, comm, 2);
    ADD_FAILURE() << "stage 2 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--zero 2"), std::string::npos) << e.what();
  }
  Params mixed = make_params(4);
  mixed.emplace_back("half", Variable(Tensor::zeros({4}, DType::bf16), true));
  try {
    DataParallelOptimizer bad(mixed, {}, comm, 1);
    ADD_FAILURE() << "mixed dtypes accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("parameter 'half'"), std::string::npos) << e.what();
  }
  DataParallelOptimizer zero1(a, {}, comm, 1);
  auto state = zero1.state();
  state.erase(state.begin() + 1);  // exp_avg_sq.p0
  try {
    zero1.load_state(state, 1);
    ADD_FAILURE() << "incomplete state accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'exp_avg_sq.p0' is missing"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace rlaif
