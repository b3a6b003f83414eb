// CPU softmax and log-softmax, checked against naive double-precision loops, and their backward
// passes against the closed forms of backend.h and against central differences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/backend.h"
#include "tests/kernels/conformance.h"
#include "tests/support/backends.h"

namespace rlaif {
namespace {

using testing::random_tensor;

using test::cpu;

// log softmax of one row, in double.
std::vector<double> log_softmax_ref(const double* x, int64_t D) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t d = 0; d < D; ++d) m = std::max(m, x[d]);
  double sum = 0.0;
  for (int64_t d = 0; d < D; ++d) sum += std::exp(x[d] - m);
  std::vector<double> out(static_cast<size_t>(D));
  for (int64_t d = 0; d < D; ++d) out[d] = x[d] - m - std::log(sum);
  return out;
}

std::vector<double> row(const Tensor& t, int64_t r) {
  const int64_t D = t.size(-1);
  const float* p = t.data<float>() + r * D;
  return std::vector<double>(p, p + D);
}

const Shape kShapes[] = {{7, 13}, {1, 1}, {2, 3, 5}, {4, 1000}, {0, 5}, {13}};

TEST(CpuSoftmax, ForwardMatchesNaiveLoops) {
  for (const Shape& shape : kShapes) {
    // A wide range, so a softmax without max subtraction would overflow.
    Tensor x = random_tensor(shape, 1, -100.0f, 100.0f);
    Tensor y = Tensor::empty(shape, DType::f32), ly = Tensor::empty(shape, DType::f32);
    cpu().softmax(x, y);
    cpu().log_softmax(x, ly);
    const int64_t D = shape.back(), N = D == 0 ? 0 : x.numel() / D;
    for (int64_t r = 0; r < N; ++r) {
      std::vector<double> want = log_softmax_ref(row(x, r).data(), D);
      for (int64_t d = 0; d < D; ++d) {
        ASSERT_NEAR(ly.data<float>()[r * D + d], want[d], 1e-6 * (1 + std::fabs(want[d])))
            << shape_str(shape) << " row " << r;
        double p = std::exp(want[d]);
        ASSERT_NEAR(y.data<float>()[r * D + d], p, 1e-7 + 1e-6 * p) << shape_str(shape);
      }
    }
  }
}

TEST(CpuSoftmax, ExtremeRows) {
  const float inf = std::numeric_limits<float>::infinity();
  // Huge logits, a masked (-inf) entry, and a one-element row.
  Tensor x = Tensor::from_vector<float>({3e38f, -3e38f, 0.0f, -inf, 2.0f, -inf}, {2, 3});
  Tensor y = Tensor::empty({2, 3}, DType::f32), ly = Tensor::empty({2, 3}, DType::f32);
  cpu().softmax(x, y);
  cpu().log_softmax(x, ly);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f}));
  std::vector<float> l = ly.to_vector<float>();
  EXPECT_EQ(l[0], 0.0f);
  EXPECT_EQ(l[3], -inf);
  EXPECT_EQ(l[4], 0.0f);
  Tensor one = Tensor::from_vector<float>({-7.0f}, {1, 1}), p = Tensor::empty({1, 1}, DType::f32);
  cpu().softmax(one, p);
  EXPECT_EQ(p.item(), 1.0f);
}

TEST(CpuSoftmax, BackwardMatchesClosedForms) {
  for (const Shape& shape : kShapes) {
    Tensor x = random_tensor(shape, 2, -3.0f, 3.0f), dy = random_tensor(shape, 3);
    Tensor y = Tensor::empty(shape, DType::f32), ly = Tensor::empty(shape, DType::f32);
    Tensor dx = Tensor::empty(shape, DType::f32), dlx = Tensor::empty(shape, DType::f32);
    cpu().softmax(x, y);
    cpu().log_softmax(x, ly);
    cpu().softmax_backward(y, dy, dx);
    cpu().log_softmax_backward(ly, dy, dlx);
    const int64_t D = shape.back(), N = D == 0 ? 0 : x.numel() / D;
    for (int64_t r = 0; r < N; ++r) {
      std::vector<double> yr = row(y, r), lr = row(ly, r), g = row(dy, r);
      double dot = 0.0, total = 0.0;
      for (int64_t d = 0; d < D; ++d) {
        dot += g[d] * yr[d];
        total += g[d];
      }
      for (int64_t d = 0; d < D; ++d) {
        ASSERT_NEAR(dx.data<float>()[r * D + d], yr[d] * (g[d] - dot), 1e-6) << shape_str(shape);
        ASSERT_NEAR(dlx.data<float>()[r * D + d], g[d] - std::exp(lr[d]) * total,
                    1e-6 * (1 + std::fabs(total)))
            << shape_str(shape);
      }
    }
  }
}

TEST(CpuSoftmax, BackwardMatchesCentralDifferences) {
  // For L = Σ w ⊙ f(x), dL/dx is f's backward applied to dy = w.
  const int64_t D = 9;
  Tensor x = random_tensor({1, D}, 4, -2.0f, 2.0f), w = random_tensor({1, D}, 5);
  Tensor y = Tensor::empty({1, D}, DType::f32), ly = Tensor::empty({1, D}, DType::f32);
  Tensor dx = Tensor::empty({1, D}, DType::f32), dlx = Tensor::empty({1, D}, DType::f32);
  cpu().softmax(x, y);
  cpu().log_softmax(x, ly);
  cpu().softmax_backward(y, w, dx);
  cpu().log_softmax_backward(ly, w, dlx);
  std::vector<double> xv = row(x, 0), wv = row(w, 0);
  auto loss = [&](const std::vector<double>& at, bool log) {
    std::vector<double> l = log_softmax_ref(at.data(), D);
    double sum = 0.0;
    for (int64_t d = 0; d < D; ++d) sum += wv[d] * (log ? l[d] : std::exp(l[d]));
    return sum;
  };
  const double h = 1e-5;
  for (int64_t d = 0; d < D; ++d) {
    for (bool log : {false, true}) {
      std::vector<double> up = xv, down = xv;
      up[d] += h;
      down[d] -= h;
      double want = (loss(up, log) - loss(down, log)) / (2 * h);
      float got = (log ? dlx : dx).data<float>()[d];
      ASSERT_NEAR(got, want, 1e-5) << (log ? "log_softmax" : "softmax") << " at " << d;
    }
  }
}

TEST(CpuSoftmax, WorksInPlace) {
  Tensor x = random_tensor({7, 13}, 6);
  Tensor want = Tensor::empty({7, 13}, DType::f32);
  cpu().log_softmax(x, want);
  cpu().log_softmax(x, x);
  EXPECT_EQ(x.to_vector<float>(), want.to_vector<float>());

  Tensor y = random_tensor({7, 13}, 7, 0.0f, 1.0f), dy = random_tensor({7, 13}, 8);
  Tensor dx = Tensor::empty({7, 13}, DType::f32);
  cpu().softmax_backward(y, dy, dx);
  cpu().softmax_backward(y, dy, dy);
  EXPECT_EQ(dy.to_vector<float>(), dx.to_vector<float>());
}

TEST(CpuSoftmax, RejectsBadArguments) {
  Tensor x = random_tensor({7, 13}, 1);
  Tensor out = Tensor::empty({7, 13}, DType::f32);
  Tensor x16 = Tensor::empty({7, 13}, DType::bf16);
  cpu().cast(x, x16);
  EXPECT_THROW(cpu().softmax(x, Tensor::empty({13, 7}, DType::f32)), Error);
  EXPECT_THROW(cpu().softmax(x16, out), Error);
  EXPECT_THROW(cpu().log_softmax(Tensor::scalar(1.0f), Tensor::empty({}, DType::f32)), Error);
  EXPECT_THROW(cpu().log_softmax(x, Tensor()), Error);
  EXPECT_THROW(cpu().softmax_backward(x, random_tensor({7, 12}, 2), out), Error);
  EXPECT_THROW(cpu().softmax_backward(x, x, Tensor::empty({91}, DType::f32)), Error);
  EXPECT_THROW(cpu().log_softmax_backward(x, x16, out), Error);
}

}  // namespace
}  // namespace rlaif
