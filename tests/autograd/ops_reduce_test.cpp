// Gradchecks of the reductions and the softmaxes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "autograd/ops.h"
#include "tests/autograd/test_util.h"

namespace rlaif {
namespace {

using test::distinct;
using test::expect_gradcheck;
using test::param;
using test::uniform;

TEST(OpsReduce, SumMeanOverEachDimension) {
  uint64_t seed = 1000;
  for (const Shape& shape : {Shape{3, 7}, Shape{2, 5, 13}}) {
    for (int dim = -1; dim < static_cast<int>(shape.size()); ++dim) {
      SCOPED_TRACE(shape_str(shape) + " dim " + std::to_string(dim));
      Variable x = param(uniform(shape, seed++));
      expect_gradcheck([dim](const std::vector<Variable>& v) { return sum(v[0], dim); }, {x});
      expect_gradcheck([dim](const std::vector<Variable>& v) { return mean(v[0], dim); }, {x});
    }
  }
}

TEST(OpsReduce, MaxOverEachDimension) {
  uint64_t seed = 1100;
  for (const Shape& shape : {Shape{3, 7}, Shape{2, 5, 13}}) {
    for (int dim = -1; dim < static_cast<int>(shape.size()); ++dim) {
      SCOPED_TRACE(shape_str(shape) + " dim " + std::to_string(dim));
      // Distinct values 0.05 apart: the winner of every row is unique and stays the winner
      // under a ±eps perturbation.
      Variable x = param(distinct(shape, seed++));
      expect_gradcheck([dim](const std::vector<Variable>& v) { return max(v[0], dim); }, {x});
    }
  }
}

TEST(OpsReduce, SumAllMeanAll) {
  uint64_t seed = 1200;
  for (const Shape& shape : {Shape{3, 7}, Shape{2, 5, 13}}) {
    Variable x = param(uniform(shape, seed++));
    Variable s = sum_all(x);
    EXPECT_EQ(s.dim(), 0);
    expect_gradcheck([](const std::vector<Variable>& v) { return sum_all(v[0]); }, {x});
    expect_gradcheck([](const std::vector<Variable>& v) { return mean_all(v[0]); }, {x});
  }
}

TEST(OpsReduce, MaskedSumMean) {
  uint64_t seed = 1300;
  for (const Shape& shape : {Shape{3, 7}, Shape{4, 13}}) {
    SCOPED_TRACE(shape_str(shape));
    // A 0/1 mask with row 1 empty (masked_mean gives 0 and no gradient there).
    Tensor mask = Tensor::empty(shape, DType::f32);
    Tensor r = uniform(shape, seed++);
    for (int64_t i = 0; i < mask.numel(); ++i) {
      bool row1 = i / shape[1] == 1;
      mask.data<float>()[i] = (!row1 && r.data<float>()[i] > -0.3f) ? 1.0f : 0.0f;
    }
    Variable x = param(uniform(shape, seed++));
    expect_gradcheck([mask](const std::vector<Variable>& v) { return masked_sum(v[0], mask); },
                     {x});
    expect_gradcheck([mask](const std::vector<Variable>& v) { return masked_mean(v[0], mask); },
                     {x});
  }
}

TEST(OpsReduce, SoftmaxLogSoftmax) {
  uint64_t seed = 1400;
  for (const Shape& shape : {Shape{3, 7}, Shape{2, 5, 13}}) {
    SCOPED_TRACE(shape_str(shape));
    Variable x = param(uniform(shape, seed++, -3.0f, 3.0f));
    expect_gradcheck([](const std::vector<Variable>& v) { return softmax(v[0]); }, {x});
    expect_gradcheck([](const std::vector<Variable>& v) { return log_softmax(v[0]); }, {x});
  }
}

}  // namespace
}  // namespace rlaif
