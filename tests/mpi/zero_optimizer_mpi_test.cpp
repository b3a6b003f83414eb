// ZeRO-1 over real ranks (DataParallelOptimizer, algorithms/data_parallel_optimizer.h). CTest
// starts this program with mpirun -np 2 and -np 3, so parameters straddle chunk boundaries
// differently. Every rank makes the same collective calls in every test, also when an expectation
// fails, so a failure is reported instead of hanging.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/data_parallel_optimizer.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "runtime/communicator.h"
#include "tests/mpi/mpi_test_main.h"

namespace rlaif {
namespace {

using Params = std::vector<std::pair<std::string, Variable>>;

// 109 elements: on 2 ranks chunks of 55, on 3 of 37; every chunk boundary cuts a parameter.
const std::vector<Shape> kShapes = {{7, 5}, {13}, {3, 4, 2}, {1}, {6, 6}};

Communicator& world() {
  return world_communicator();
}

Params make_params() {
  Params params;
  for (size_t i = 0; i < kShapes.size(); ++i) {
    Tensor t = Tensor::empty(kShapes[i], DType::f32);
    backend_for(Device::cpu()).random_normal(t, 5, i * 1000, 0.0f, 1.0f);
    std::string name = "p";
    name += std::to_string(i);
    params.emplace_back(name, Variable(t, true));
  }
  return params;
}

// This rank's gradients at `step`: different on every rank, as data-parallel gradients are.
void set_grads(Params& params, int64_t step) {
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor g = Tensor::empty(params[i].second.shape(), DType::f32);
    const uint64_t offset = static_cast<uint64_t>((step * 16 + world().rank()) * 100000 + i * 1000);
    backend_for(Device::cpu()).random_normal(g, 11, offset, 0.0f, 2.0f);
    params[i].second.set_grad(g);
  }
}

void train(DataParallelOptimizer& opt, Params& params, int64_t from, int64_t to,
           std::vector<double>* norms = nullptr) {
  for (int64_t step = from; step < to; ++step) {
    set_grads(params, step);
    const double norm = opt.reduce_gradients(step % 2 ? 2.0 : 100.0);  // clip on odd steps
    if (norms) norms->push_back(norm);
    opt.step(1e-2);
    opt.zero_grad();
  }
}

std::vector<float> flat(const Params& params) {
  std::vector<float> out;
  for (const auto& [name, p] : params) {
    std::vector<float> v = p.data().to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// Rank 0's copy of `values` (every rank calls this).
std::vector<float> rank0(const std::vector<float>& values) {
  Tensor t = Tensor::from_vector(values, {static_cast<int64_t>(values.size())});
  world().broadcast(t, 0);
  return t.to_vector<float>();
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    // Only the clipping coefficient can differ: its norm sums a straddling parameter's pieces.
    EXPECT_NEAR(a[i], b[i], 1e-6 * std::max(1.0f, std::fabs(a[i]))) << what << " element " << i;
  }
}

TEST(ZeroOptimizerMpi, ShardedUpdatesMatchReplicatedOnEveryRank) {
  Params a = make_params(), b = make_params();
  DataParallelOptimizer replicated(a, {}, world(), 0), sharded(b, {}, world(), 1);
  std::vector<double> norms0, norms1;
  train(replicated, a, 0, 6, &norms0);
  train(sharded, b, 0, 6, &norms1);
  for (size_t i = 0; i < norms0.size(); ++i) {
    EXPECT_NEAR(norms0[i], norms1[i], 1e-6 * norms0[i]) << "step " << i;
    EXPECT_GT(norms0[i], 2.0) << "step " << i << " would not clip";
  }
  expect_close(flat(a), flat(b), "weights");
  // The weights are bitwise the same on every rank, for both stages.
  EXPECT_EQ(flat(a), rank0(flat(a)));
  EXPECT_EQ(flat(b), rank0(flat(b)));
  // Optimizer memory per rank: one chunk of each moment, ⌈109/R⌉ elements.
  const int64_t chunk = (109 + world().size() - 1) / world().size();
  EXPECT_EQ(sharded.state_bytes(), 2 * 4 * chunk);
  EXPECT_EQ(replicated.state_bytes(), 2 * 4 * 109);
  // The gathered state is AdamW's format, the same on every rank and close to stage 0's.
  const auto s0 = replicated.state(), s1 = sharded.state();
  ASSERT_EQ(s0.size(), s1.size());
  for (size_t i = 0; i < s0.size(); ++i) {
    EXPECT_EQ(s0[i].first, s1[i].first);
    const std::vector<float> v1 = s1[i].second.to_vector<float>();
    expect_close(s0[i].second.to_vector<float>(), v1, s0[i].first.c_str());
    EXPECT_EQ(v1, rank0(v1)) << s1[i].first;
  }
  // Only the checkpoint's writer asks for the state; the others take part and get nothing.
  const bool writer = world().rank() == 0;
  const auto mine = sharded.state(writer);
  ASSERT_EQ(mine.size(), writer ? s1.size() : 0u);
  for (size_t i = 0; i < mine.size(); ++i) {
    EXPECT_EQ(mine[i].first, s1[i].first);
    EXPECT_EQ(mine[i].second.to_vector<float>(), s1[i].second.to_vector<float>());
  }
  EXPECT_EQ(replicated.state(writer).size(), writer ? s0.size() : 0u);
}

// Buckets of 4 f32 elements per rank: ownership interleaves across ranks within every parameter.
TEST(ZeroOptimizerMpi, SmallBucketsMatchReplicated) {
  Params a = make_params(), b = make_params();
  const size_t bucket_bytes = 16 * static_cast<size_t>(world().size());
  DataParallelOptimizer replicated(a, {}, world(), 0, bucket_bytes);
  DataParallelOptimizer sharded(b, {}, world(), 1, bucket_bytes);
  train(replicated, a, 0, 5);
  train(sharded, b, 0, 5);
  expect_close(flat(a), flat(b), "weights");
  EXPECT_EQ(flat(b), rank0(flat(b)));
  const int64_t buckets = (109 + 4 * world().size() - 1) / (4 * world().size());
  EXPECT_EQ(sharded.state_bytes(), 2 * 4 * 4 * buckets);
  const auto s0 = replicated.state(), s1 = sharded.state();
  ASSERT_EQ(s0.size(), s1.size());
  for (size_t i = 0; i < s0.size(); ++i)
    expect_close(s0[i].second.to_vector<float>(), s1[i].second.to_vector<float>(),
                 s0[i].first.c_str());
}

TEST(ZeroOptimizerMpi, ResumesFromItsStateBitForBit) {
  Params a = make_params(), b = make_params();
  const size_t bucket_bytes = 40 * static_cast<size_t>(world().size());  // straddling pieces
  DataParallelOptimizer first(a, {}, world(), 1, bucket_bytes);
  train(first, a, 0, 3);
  // A checkpoint: the weights and the gathered state, loaded by a new optimizer on new params.
  for (size_t i = 0; i < a.size(); ++i) b[i].second.data().copy_from(a[i].second.data());
  DataParallelOptimizer resumed(b, {}, world(), 1, bucket_bytes);
  resumed.load_state(first.state(), first.step_count());
  train(first, a, 3, 6);
  train(resumed, b, 3, 6);
  EXPECT_EQ(flat(a), flat(b));
}

// A small network trained on each rank's own data, with the reduction overlapped with the last
// micro-batch's backward pass (collectives called from inside backward(), bucket by bucket) and
// without: bitwise the same weights, on every rank, for both stages.
struct TinyNet {
  Params params;
  TinyNet() {
    const std::vector<Shape> shapes = {{6, 4}, {6}, {6, 6}, {5}, {4, 6}};
    for (size_t i = 0; i < shapes.size(); ++i) {
      Tensor t = Tensor::empty(shapes[i], DType::f32);
      backend_for(Device::cpu()).random_normal(t, 21, i * 1000, 0.0f, 0.5f);
      std::string name = "q";
      name += std::to_string(i);
      params.emplace_back(name, Variable(t, true, name));
    }
  }
  Variable loss(int64_t step, int64_t micro) const {
    Tensor x = Tensor::empty({3, 4}, DType::f32);
    const uint64_t offset = static_cast<uint64_t>((step * 8 + micro) * 16 + world().rank());
    backend_for(Device::cpu()).random_normal(x, 31, offset, 0.0f, 1.0f);
    Variable h = tanh(linear(Variable(x), params[0].second, params[1].second));
    h = tanh(linear(h, params[2].second));
    // params[3] is never used: it has no gradient on any rank.
    return scale(mean_all(square(linear(h, params[4].second))), 0.5f);
  }
};

void train_net(TinyNet& net, DataParallelOptimizer& opt, bool overlap) {
  for (int64_t step = 0; step < 4; ++step) {
    for (int64_t micro = 0; micro < 2; ++micro) {
      std::optional<GradientReadyScope> scope;
      if (overlap && micro == 1) scope.emplace(opt.overlap_backward());
      net.loss(step, micro).backward();
    }
    opt.reduce_gradients(step % 2 ? 0.05 : 0.0);
    opt.step(1e-2);
    opt.zero_grad();
  }
}

TEST(ZeroOptimizerMpi, OverlappedBackwardMatchesPlainBitForBit) {
  for (int stage : {0, 1}) {
    TinyNet plain, overlapped;
    const size_t bucket_bytes = 4 * 6 * static_cast<size_t>(world().size());
    DataParallelOptimizer plain_opt(plain.params, {}, world(), stage, bucket_bytes);
    DataParallelOptimizer overlap_opt(overlapped.params, {}, world(), stage, bucket_bytes);
    train_net(plain, plain_opt, false);
    train_net(overlapped, overlap_opt, true);
    EXPECT_EQ(flat(overlapped.params), flat(plain.params)) << "stage " << stage;
    EXPECT_EQ(flat(overlapped.params), rank0(flat(overlapped.params))) << "stage " << stage;
    EXPECT_NE(flat(overlapped.params), flat(TinyNet().params)) << "nothing was trained";
  }
}

}  // namespace
}  // namespace rlaif

int main(int argc, char** argv) {
  return rlaif::run_mpi_tests(argc, argv, "zero_optimizer_mpi_test");
}
