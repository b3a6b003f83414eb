// CPU embedding and its scatter-add gradient, checked against plain loops.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/backend.h"
#include "tests/kernels/conformance.h"
#include "tests/support/backends.h"
#include "tests/support/threads.h"

namespace rlaif {
namespace {

using testing::random_ids;
using testing::random_tensor;

using test::cpu;

using test::ScopedThreads;

TEST(CpuEmbedding, ForwardGathersRowsWithLeadingDimensions) {
  const int64_t vocab = 11, d = 13;
  Tensor weight = random_tensor({vocab, d}, 1);
  Tensor ids = random_ids({3, 7}, 2, vocab);
  Tensor out = Tensor::empty({3, 7, d}, DType::f32);
  cpu().embedding(weight, ids, out);

  const float* w = weight.data<float>();
  const int32_t* id = ids.data<int32_t>();
  const float* o = out.data<float>();
  for (int64_t n = 0; n < ids.numel(); ++n) {
    for (int64_t j = 0; j < d; ++j) {
      ASSERT_EQ(o[n * d + j], w[id[n] * d + j]) << "position " << n << ", feature " << j;
    }
  }
}

TEST(CpuEmbedding, BackwardScatterAddsAndZeroesUnusedRows) {
  const int64_t vocab = 7, d = 5;
  // Repeated ids, and rows 1, 4 and 6 that no id points at.
  std::vector<int32_t> id = {3, 0, 3, 5, 2, 3, 0, 5, 5, 2, 3};
  const int64_t n = static_cast<int64_t>(id.size());
  Tensor ids = Tensor::from_vector(id, {n});
  Tensor dout = random_tensor({n, d}, 3);
  Tensor dweight = Tensor::empty({vocab, d}, DType::f32);
  // Stale contents must be overwritten, not accumulated into.
  std::fill(dweight.data<float>(), dweight.data<float>() + dweight.numel(),
            std::numeric_limits<float>::quiet_NaN());
  cpu().embedding_backward(ids, dout, dweight);

  std::vector<double> want(static_cast<size_t>(vocab * d), 0.0);
  const float* g = dout.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) want[id[i] * d + j] += g[i * d + j];
  }
  const float* got = dweight.data<float>();
  for (int64_t i = 0; i < vocab * d; ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-6) << "row " << i / d << ", feature " << i % d;
  }
}

TEST(CpuEmbedding, BackwardOfOneHotIdsIsTheGradientRow) {
  // Each id used once: dweight is a permutation of dout's rows (an exact copy).
  const int64_t vocab = 4, d = 9;
  Tensor ids = Tensor::from_vector(std::vector<int32_t>{2, 0, 3, 1}, {2, 2});
  Tensor dout = random_tensor({2, 2, d}, 4);
  Tensor dweight = Tensor::empty({vocab, d}, DType::f32);
  cpu().embedding_backward(ids, dout, dweight);
  const int32_t* id = ids.data<int32_t>();
  for (int64_t n = 0; n < 4; ++n) {
    for (int64_t j = 0; j < d; ++j) {
      EXPECT_EQ(dweight.data<float>()[id[n] * d + j], dout.data<float>()[n * d + j]);
    }
  }
}

TEST(CpuEmbedding, BackwardIsBitwiseIndependentOfThreadCount) {
  // Large enough for parallel_for to fork; few ids so that rows collect many positions.
  const int64_t vocab = 64, d = 257, n = 3001;
  Tensor ids = random_ids({n}, 5, static_cast<int32_t>(vocab));
  Tensor dout = random_tensor({n, d}, 6);
  Tensor one = Tensor::empty({vocab, d}, DType::f32);
  Tensor three = Tensor::empty({vocab, d}, DType::f32);
  {
    ScopedThreads threads(1);
    cpu().embedding_backward(ids, dout, one);
  }
  {
    ScopedThreads threads(3);
    cpu().embedding_backward(ids, dout, three);
  }
  EXPECT_EQ(one.to_vector<float>(), three.to_vector<float>());
}

TEST(CpuEmbedding, EmptyIdsGiveZeroGradient) {
  Tensor ids = Tensor::empty({0}, DType::i32);
  Tensor dout = Tensor::empty({0, 3}, DType::f32);
  Tensor dweight = Tensor::empty({4, 3}, DType::f32);
  cpu().embedding_backward(ids, dout, dweight);
  for (float v : dweight.to_vector<float>()) EXPECT_EQ(v, 0.0f);
}

TEST(CpuEmbedding, OutOfRangeIdIsAnErrorNamingIt) {
  Tensor weight = random_tensor({5, 3}, 7);
  Tensor out = Tensor::empty({4, 3}, DType::f32);
  for (int32_t bad : {5, -1}) {
    Tensor ids = Tensor::from_vector(std::vector<int32_t>{0, 4, bad, 1}, {4});
    try {
      cpu().embedding(weight, ids, out);
      ADD_FAILURE() << "id " << bad << " accepted";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("embedding"), std::string::npos) << message;
      EXPECT_NE(message.find("ids[2] "), std::string::npos) << message;
      EXPECT_NE(message.find("= " + std::to_string(bad)), std::string::npos) << message;
    }
    Tensor dweight = Tensor::empty({5, 3}, DType::f32);
    EXPECT_THROW(cpu().embedding_backward(ids, out, dweight), Error);
  }
}

TEST(CpuEmbedding, BadShapesAndDtypesAreErrors) {
  Tensor weight = random_tensor({5, 3}, 8);
  Tensor ids = Tensor::from_vector(std::vector<int32_t>{0, 1}, {2});
  Tensor out = Tensor::empty({2, 3}, DType::f32);
  EXPECT_THROW(cpu().embedding(weight, ids, Tensor::empty({2, 4}, DType::f32)), Error);
  EXPECT_THROW(cpu().embedding(weight, ids, Tensor::empty({1, 2, 3}, DType::f32)), Error);
  EXPECT_THROW(cpu().embedding(weight.reshape({15}), ids, out), Error);
  EXPECT_THROW(cpu().embedding(Tensor::empty({5, 3}, DType::bf16), ids, out), Error);
  EXPECT_THROW(cpu().embedding(weight, Tensor::zeros({2}, DType::i64), out), Error);
  EXPECT_THROW(cpu().embedding(weight, Tensor::zeros({2}, DType::f32), out), Error);
  EXPECT_THROW(cpu().embedding_backward(ids, out, Tensor::empty({5, 4}, DType::f32)), Error);
  EXPECT_THROW(cpu().embedding_backward(ids, out, Tensor::empty({5, 3}, DType::f16)), Error);
  EXPECT_THROW(cpu().embedding_backward(ids, out, Tensor()), Error);
}

}  // namespace
}  // namespace rlaif
