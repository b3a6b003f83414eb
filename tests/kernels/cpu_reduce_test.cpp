// CPU reductions (reduce over any dimension, argmax, masked row sums) and their backward passes,
// checked against naive loops in double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/backend.h"
#include "tests/kernels/conformance.h"
#include "tests/support/backends.h"
#include "tests/support/threads.h"

namespace rlaif {
namespace {

using testing::random_tensor;

using test::cpu;

using test::ScopedThreads;

const ReduceOp kReduceOps[] = {ReduceOp::sum, ReduceOp::mean, ReduceOp::max};

// x viewed as [outer, n, inner] around dimension d (non-negative).
struct View {
  int64_t outer = 1, n = 1, inner = 1;
  Shape out;
};
View view(const Shape& shape, int64_t d) {
  View v;
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i) {
    if (i < d) v.outer *= shape[i];
    if (i > d) v.inner *= shape[i];
    if (i != d) v.out.push_back(shape[i]);
  }
  v.n = shape[d];
  return v;
}

// The reduction by definition, in double; for max also the first position of the maximum.
std::vector<double> reduce_ref(ReduceOp op, const Tensor& x, int64_t d,
                               std::vector<int64_t>* argmax = nullptr) {
  View v = view(x.shape(), d);
  const float* p = x.data<float>();
  std::vector<double> out;
  for (int64_t o = 0; o < v.outer; ++o) {
    for (int64_t i = 0; i < v.inner; ++i) {
      double sum = 0.0, best = -std::numeric_limits<double>::infinity();
      int64_t at = 0;
      for (int64_t k = 0; k < v.n; ++k) {
        double x_k = p[(o * v.n + k) * v.inner + i];
        sum += x_k;
        if (x_k > best) {
          best = x_k;
          at = k;
        }
      }
      out.push_back(op == ReduceOp::sum ? sum : op == ReduceOp::mean ? sum / v.n : best);
      if (argmax) argmax->push_back(at);
    }
  }
  return out;
}

TEST(CpuReduce, EveryOpOverEveryDimension) {
  for (const Shape& shape :
       {Shape{3, 7, 13}, Shape{7, 13}, Shape{1, 1}, Shape{5}, Shape{2, 1, 3, 4}}) {
    const int rank = static_cast<int>(shape.size());
    for (int dim = -rank; dim < rank; ++dim) {
      const int64_t d = dim < 0 ? dim + rank : dim;
      Tensor x = random_tensor(shape, 1 + d);
      View v = view(shape, d);
      for (ReduceOp op : kReduceOps) {
        Tensor out = Tensor::empty(v.out, DType::f32);
        cpu().reduce(op, x, dim, out);
        std::vector<double> want = reduce_ref(op, x, d);
        std::vector<float> got = out.to_vector<float>();
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_NEAR(got[i], want[i], 1e-6 * (1 + std::fabs(want[i])))
              << reduce_op_name(op) << " of " << shape_str(shape) << " over dim " << dim << " at "
              << i;
        }
      }
    }
  }
}

TEST(CpuReduce, OneDimensionalInputGivesAZeroDimensionalOutput) {
  Tensor x = Tensor::from_vector<float>({1.0f, 5.0f, -2.0f, 5.0f}, {4});
  Tensor out = Tensor::empty({}, DType::f32);
  cpu().reduce(ReduceOp::sum, x, 0, out);
  EXPECT_EQ(out.item(), 9.0f);
  cpu().reduce(ReduceOp::mean, x, -1, out);
  EXPECT_EQ(out.item(), 2.25f);
  cpu().reduce(ReduceOp::max, x, 0, out);
  EXPECT_EQ(out.item(), 5.0f);
  // max's gradient goes to the first position holding the maximum only.
  Tensor dx = Tensor::empty({4}, DType::f32);
  cpu().reduce_backward(ReduceOp::max, x, out, Tensor::scalar(2.0f), 0, dx);
  EXPECT_EQ(dx.to_vector<float>(), (std::vector<float>{0.0f, 2.0f, 0.0f, 0.0f}));
}

TEST(CpuReduce, BackwardOverEveryDimension) {
  for (const Shape& shape : {Shape{3, 7, 13}, Shape{7, 13}, Shape{1}}) {
    const int rank = static_cast<int>(shape.size());
    for (int dim = -rank; dim < rank; ++dim) {
      const int64_t d = dim < 0 ? dim + rank : dim;
      View v = view(shape, d);
      Tensor x = random_tensor(shape, 10 + d);
      Tensor dy = random_tensor(v.out, 20 + d);
      for (ReduceOp op : kReduceOps) {
        Tensor y = Tensor::empty(v.out, DType::f32), dx = Tensor::empty(shape, DType::f32);
        cpu().reduce(op, x, dim, y);
        cpu().reduce_backward(op, x, y, dy, dim, dx);
        std::vector<int64_t> at;
        reduce_ref(op, x, d, &at);
        const float* g = dy.data<float>();
        const float* got = dx.data<float>();
        for (int64_t o = 0; o < v.outer; ++o) {
          for (int64_t k = 0; k < v.n; ++k) {
            for (int64_t i = 0; i < v.inner; ++i) {
              const int64_t out_i = o * v.inner + i;
              double want = op == ReduceOp::sum    ? g[out_i]
                            : op == ReduceOp::mean ? g[out_i] / static_cast<double>(v.n)
                            : k == at[out_i]       ? g[out_i]
                                                   : 0.0;
              ASSERT_NEAR(got[(o * v.n + k) * v.inner + i], want, 1e-7)
                  << reduce_op_name(op) << " of " << shape_str(shape) << " over dim " << dim;
            }
          }
        }
      }
    }
  }
}

TEST(CpuReduce, EmptyDimensions) {
  Tensor x = Tensor::empty({3, 0}, DType::f32);
  Tensor out = Tensor::empty({3}, DType::f32);
  cpu().reduce(ReduceOp::sum, x, 1, out);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{0.0f, 0.0f, 0.0f}));
  cpu().reduce(ReduceOp::mean, x, 1, out);
  for (float v : out.to_vector<float>()) EXPECT_TRUE(std::isnan(v));  // 0/0, as torch
  EXPECT_THROW(cpu().reduce(ReduceOp::max, x, 1, out), Error);
  // Reducing the non-empty dimension of an empty tensor gives an empty result.
  Tensor none = Tensor::empty({0}, DType::f32);
  EXPECT_NO_THROW(cpu().reduce(ReduceOp::max, x, 0, none));
  Tensor dx = Tensor::empty({3, 0}, DType::f32);
  EXPECT_NO_THROW(cpu().reduce_backward(ReduceOp::max, x, out, out, 1, dx));
}

TEST(CpuReduce, NaNPropagatesThroughMax) {
  Tensor x = Tensor::from_vector<float>({1.0f, std::nanf(""), 3.0f}, {1, 3});
  Tensor out = Tensor::empty({1}, DType::f32);
  cpu().reduce(ReduceOp::max, x, 1, out);
  EXPECT_TRUE(std::isnan(out.item()));
  Tensor idx = Tensor::empty({1}, DType::i32);
  cpu().argmax(x, idx);
  EXPECT_EQ(idx.to_vector<int32_t>()[0], 1);
}

TEST(CpuReduce, SumsDoNotDependOnTheThreadCount) {
  // Large enough for parallel_for to fork; every reduced dimension, bitwise equal.
  Tensor x = random_tensor({64, 33, 97}, 5);
  for (int dim : {0, 1, 2}) {
    View v = view(x.shape(), dim);
    Tensor one = Tensor::empty(v.out, DType::f32), many = Tensor::empty(v.out, DType::f32);
    {
      ScopedThreads threads(1);
      cpu().reduce(ReduceOp::sum, x, dim, one);
    }
    {
      ScopedThreads threads(4);
      cpu().reduce(ReduceOp::sum, x, dim, many);
    }
    EXPECT_EQ(one.to_vector<float>(), many.to_vector<float>()) << "dim " << dim;
  }
}

TEST(CpuReduce, ArgmaxPicksTheFirstLargest) {
  Tensor x = random_tensor({7, 13}, 6);
  float* p = x.data<float>();
  p[0 * 13 + 3] = 5.0f;  // row 0: a tie at 3 and 9
  p[0 * 13 + 9] = 5.0f;
  p[6 * 13 + 12] = 9.0f;  // row 6: the last position
  Tensor out = Tensor::empty({7}, DType::i32);
  cpu().argmax(x, out);
  std::vector<int64_t> want;
  reduce_ref(ReduceOp::max, x, 1, &want);
  std::vector<int32_t> got = out.to_vector<int32_t>();
  for (size_t r = 0; r < got.size(); ++r) EXPECT_EQ(got[r], want[r]) << "row " << r;
  EXPECT_EQ(got[0], 3);
  EXPECT_EQ(got[6], 12);

  // Leading dimensions are rows; a 1-D input gives a 0-d result; no rows is fine.
  Tensor x3 = random_tensor({2, 3, 5}, 7);
  Tensor out3 = Tensor::empty({2, 3}, DType::i32);
  cpu().argmax(x3, out3);
  std::vector<int64_t> want3;
  reduce_ref(ReduceOp::max, x3, 2, &want3);
  std::vector<int32_t> got3 = out3.to_vector<int32_t>();
  for (size_t r = 0; r < got3.size(); ++r) EXPECT_EQ(got3[r], want3[r]);
  Tensor scalar = Tensor::empty({}, DType::i32);
  cpu().argmax(Tensor::from_vector<float>({1.0f, 4.0f, 2.0f}, {3}), scalar);
  EXPECT_EQ(scalar.to_vector<int32_t>()[0], 1);
  EXPECT_NO_THROW(cpu().argmax(Tensor::empty({0, 5}, DType::f32), Tensor::empty({0}, DType::i32)));
}

TEST(CpuReduce, MaskedReduceMatchesWeightedSums) {
  for (const Shape& shape : {Shape{7, 13}, Shape{1, 1}, Shape{3, 0}, Shape{2, 3, 5}}) {
    Tensor x = random_tensor(shape, 8);
    Tensor mask = random_tensor(shape, 9, 0.0f, 1.0f);
    float* m = mask.data<float>();
    const int64_t T = shape.back(), N = shape_numel(shape) / std::max<int64_t>(T, 1);
    for (int64_t i = 0; i < mask.numel(); ++i) m[i] = m[i] < 0.4f ? 0.0f : 1.0f;
    if (N > 1 && T > 0) {
      for (int64_t t = 0; t < T; ++t) m[T + t] = 0.0f;  // row 1 fully masked
    }
    Shape rows(shape.begin(), shape.end() - 1);
    Tensor out = Tensor::empty(rows, DType::f32), dx = Tensor::empty(shape, DType::f32);
    Tensor dy = random_tensor(rows, 10);
    for (bool mean : {false, true}) {
      cpu().masked_reduce(x, mask, mean, out);
      cpu().masked_reduce_backward(mask, dy, mean, dx);
      const float* xp = x.data<float>();
      for (int64_t r = 0; r < shape_numel(rows); ++r) {
        double sum = 0.0, weight = 0.0;
        for (int64_t t = 0; t < T; ++t) {
          sum += static_cast<double>(xp[r * T + t]) * m[r * T + t];
          weight += m[r * T + t];
        }
        double want = !mean ? sum : weight == 0.0 ? 0.0 : sum / weight;
        ASSERT_NEAR(out.data<float>()[r], want, 1e-6) << shape_str(shape) << " row " << r;
        for (int64_t t = 0; t < T; ++t) {
          double g = dy.data<float>()[r] * m[r * T + t];
          if (mean) g = weight == 0.0 ? 0.0 : g / weight;
          ASSERT_NEAR(dx.data<float>()[r * T + t], g, 1e-7) << shape_str(shape) << " row " << r;
        }
      }
    }
  }
}

TEST(CpuReduce, RejectsBadArguments) {
  Tensor x = random_tensor({7, 13}, 1);
  EXPECT_THROW(cpu().reduce(ReduceOp::sum, x, 2, Tensor::empty({7}, DType::f32)), Error);
  EXPECT_THROW(cpu().reduce(ReduceOp::sum, x, -3, Tensor::empty({7}, DType::f32)), Error);
  EXPECT_THROW(cpu().reduce(ReduceOp::sum, x, 1, Tensor::empty({13}, DType::f32)), Error);
  EXPECT_THROW(cpu().reduce(ReduceOp::sum, Tensor::scalar(1.0f), 0, Tensor::empty({}, DType::f32)),
               Error);
  Tensor y = Tensor::empty({7}, DType::f32);
  EXPECT_THROW(
      cpu().reduce_backward(ReduceOp::max, x, Tensor(), y, 1, Tensor::empty({7, 13}, DType::f32)),
      Error);
  EXPECT_THROW(cpu().reduce_backward(ReduceOp::sum, x, y, y, 1, Tensor::empty({7, 12}, DType::f32)),
               Error);
  EXPECT_THROW(cpu().argmax(x, Tensor::empty({7}, DType::f32)), Error);
  EXPECT_THROW(cpu().argmax(x, Tensor::empty({13}, DType::i32)), Error);
  EXPECT_THROW(cpu().argmax(Tensor::empty({2, 0}, DType::f32), Tensor::empty({2}, DType::i32)),
               Error);
  EXPECT_THROW(cpu().masked_reduce(x, random_tensor({7, 12}, 2), false, y), Error);
  EXPECT_THROW(cpu().masked_reduce(x, x, false, Tensor::empty({13}, DType::f32)), Error);
  EXPECT_THROW(cpu().masked_reduce_backward(x, Tensor::empty({6}, DType::f32), true,
                                            Tensor::empty({7, 13}, DType::f32)),
               Error);
}

}  // namespace
}  // namespace rlaif
