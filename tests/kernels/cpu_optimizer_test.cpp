// CPU optimizer primitives: adamw_step against hand-computed values and a double-precision
// reimplementation of PyTorch's AdamW, the master-copy path, and squared_norm's known answers and
// thread-count independence.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
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

AdamWHyper hyper(double lr, double beta1, double beta2, double eps, double wd, int64_t step) {
  AdamWHyper h;
  h.lr = lr;
  h.beta1 = beta1;
  h.beta2 = beta2;
  h.eps = eps;
  h.weight_decay = wd;
  h.step = step;
  return h;
}

Tensor cast_to(const Tensor& t, DType dtype) {
  Tensor out = Tensor::empty(t.shape(), dtype);
  cpu().cast(t, out);
  return out;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// ---- adamw_step ------------------------------------------------------------------------------

// θ = 1, lr = 0.1, β1 = 0.9, β2 = 0.999, eps = 1e-8, wd = 0.01; gradients 0.5 then -0.25.
// Step 1 (g = 0.5):
//   decay:  θ = 1·(1 − 0.1·0.01) = 0.999
//   m = 0.1·0.5 = 0.05;  v = 0.001·0.25 = 0.00025
//   m̂ = 0.05 / (1 − 0.9) = 0.5;  v̂ = 0.00025 / (1 − 0.999) = 0.25;  √v̂ = 0.5
//   θ = 0.999 − 0.1·0.5 / (0.5 + 1e-8) = 0.999 − 0.099999998 = 0.899000002
// Step 2 (g = -0.25):
//   decay:  θ = 0.899000002·0.999 = 0.898101002
//   m = 0.9·0.05 + 0.1·(-0.25) = 0.02;  v = 0.999·0.00025 + 0.001·0.0625 = 0.00031225
//   m̂ = 0.02 / (1 − 0.81) = 0.1052631579;  v̂ = 0.00031225 / (1 − 0.998001) = 0.1562031016
//   √v̂ = 0.3952253807;  update = 0.1·0.1052631579 / (0.3952253807 + 1e-8) = 0.0266337033
//   θ = 0.898101002 − 0.0266337033 = 0.8714672987
TEST(CpuOptimizer, AdamwKnownValues) {
  Tensor param = Tensor::from_vector<float>({1.0f}, {1});
  Tensor m = Tensor::zeros({1}, DType::f32), v = Tensor::zeros({1}, DType::f32);
  cpu().adamw_step(param, Tensor::from_vector<float>({0.5f}, {1}), m, v, Tensor(),
                   hyper(0.1, 0.9, 0.999, 1e-8, 0.01, 1));
  EXPECT_NEAR(param.item(), 0.899000002, 1e-6);
  EXPECT_NEAR(m.item(), 0.05, 1e-8);
  EXPECT_NEAR(v.item(), 0.00025, 1e-10);
  cpu().adamw_step(param, Tensor::from_vector<float>({-0.25f}, {1}), m, v, Tensor(),
                   hyper(0.1, 0.9, 0.999, 1e-8, 0.01, 2));
  EXPECT_NEAR(param.item(), 0.8714672987, 1e-6);
  EXPECT_NEAR(m.item(), 0.02, 1e-8);
  EXPECT_NEAR(v.item(), 0.00031225, 1e-10);
}

// PyTorch's AdamW in double.
struct ReferenceAdamW {
  std::vector<double> theta, m, v;
  void step(const std::vector<double>& g, const AdamWHyper& h) {
    const double lr = h.lr, b1 = h.beta1, b2 = h.beta2, eps = h.eps, wd = h.weight_decay;
    const double t = static_cast<double>(h.step);
    for (size_t i = 0; i < theta.size(); ++i) {
      theta[i] *= 1.0 - lr * wd;
      m[i] = b1 * m[i] + (1.0 - b1) * g[i];
      v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
      const double m_hat = m[i] / (1.0 - std::pow(b1, t));
      const double v_hat = v[i] / (1.0 - std::pow(b2, t));
      theta[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
};

std::vector<double> as_doubles(const Tensor& t) {
  std::vector<float> f = t.to_vector<float>();
  return std::vector<double>(f.begin(), f.end());
}

TEST(CpuOptimizer, AdamwMatchesDoubleReferenceOverFiveSteps) {
  const int64_t n = 1001;
  Tensor param = random_tensor({7, 11, 13}, 1, -2.0f, 2.0f);
  Tensor m = Tensor::zeros(param.shape(), DType::f32), v = Tensor::zeros(param.shape(), DType::f32);
  ReferenceAdamW ref{as_doubles(param), std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
  for (int64_t t = 1; t <= 5; ++t) {
    // Gradients of varying scale, so the second moment sees both large and tiny values.
    Tensor g = random_tensor(param.shape(), 100 + t, -1.0f, 1.0f);
    if (t == 3) cpu().affine(g, 1e-3f, 0.0f, g);
    const AdamWHyper h = hyper(0.01, 0.9, 0.95, 1e-8, 0.1, t);
    cpu().adamw_step(param, g, m, v, Tensor(), h);
    ref.step(as_doubles(g), h);
  }
  const std::vector<float> got = param.to_vector<float>();
  const std::vector<float> got_m = m.to_vector<float>(), got_v = v.to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_NEAR(got[i], ref.theta[i], 1e-6 + 1e-5 * std::fabs(ref.theta[i])) << "θ[" << i << "]";
    ASSERT_NEAR(got_m[i], ref.m[i], 1e-7 + 1e-5 * std::fabs(ref.m[i])) << "m[" << i << "]";
    ASSERT_NEAR(got_v[i], ref.v[i], 1e-9 + 1e-5 * std::fabs(ref.v[i])) << "v[" << i << "]";
  }
}

// With a master copy the arithmetic is the same, done on master; param receives its rounding.
TEST(CpuOptimizer, AdamwMasterCopy) {
  const Shape shape = {5, 37};
  const Tensor init = random_tensor(shape, 7, -1.0f, 1.0f);
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    Tensor param = cast_to(init, dtype);
    Tensor master = init.clone();
    Tensor m = Tensor::zeros(shape, DType::f32), v = Tensor::zeros(shape, DType::f32);
    // The plain f32 update of the same values: what master must hold.
    Tensor expect = init.clone();
    Tensor em = Tensor::zeros(shape, DType::f32), ev = Tensor::zeros(shape, DType::f32);
    for (int64_t t = 1; t <= 3; ++t) {
      Tensor g = random_tensor(shape, 20 + t);
      // The gradient arrives in param's dtype; the reference run sees the same rounded values.
      Tensor g_param = cast_to(g, dtype), g_f32 = cast_to(g_param, DType::f32);
      const AdamWHyper h = hyper(0.05, 0.9, 0.95, 1e-8, 0.1, t);
      cpu().adamw_step(param, g_param, m, v, master, h);
      cpu().adamw_step(expect, g_f32, em, ev, Tensor(), h);
    }
    EXPECT_TRUE(bitwise_equal(master, expect)) << dtype_name(dtype);
    EXPECT_TRUE(bitwise_equal(m, em)) << dtype_name(dtype);
    EXPECT_TRUE(bitwise_equal(v, ev)) << dtype_name(dtype);
    EXPECT_TRUE(bitwise_equal(param, cast_to(master, dtype))) << dtype_name(dtype);
  }
}

TEST(CpuOptimizer, AdamwZeroGradientOnlyDecays) {
  // g = 0 keeps m = v = 0, so the Adam term is 0/(0 + eps) = 0 and only the decay remains.
  Tensor param = Tensor::from_vector<float>({2.0f, -4.0f}, {2});
  Tensor m = Tensor::zeros({2}, DType::f32), v = Tensor::zeros({2}, DType::f32);
  cpu().adamw_step(param, Tensor::zeros({2}, DType::f32), m, v, Tensor(),
                   hyper(0.5, 0.9, 0.95, 1e-8, 0.1, 1));
  EXPECT_EQ(param.to_vector<float>(), (std::vector<float>{2.0f * 0.95f, -4.0f * 0.95f}));
}

TEST(CpuOptimizer, AdamwErrors) {
  const AdamWHyper h = hyper(0.1, 0.9, 0.95, 1e-8, 0.0, 1);
  Tensor p = Tensor::zeros({3}, DType::f32), g = Tensor::zeros({3}, DType::f32);
  Tensor m = Tensor::zeros({3}, DType::f32), v = Tensor::zeros({3}, DType::f32);
  AdamWHyper h0 = h;
  h0.step = 0;
  EXPECT_THROW(cpu().adamw_step(p, g, m, v, Tensor(), h0), Error);
  EXPECT_THROW(cpu().adamw_step(p, g, Tensor::zeros({4}, DType::f32), v, Tensor(), h), Error);
  EXPECT_THROW(cpu().adamw_step(p, Tensor::zeros({3}, DType::bf16), m, v, Tensor(), h), Error);
  // A bf16 parameter needs a master copy to be updated.
  Tensor pb = Tensor::zeros({3}, DType::bf16), gb = Tensor::zeros({3}, DType::bf16);
  EXPECT_THROW(cpu().adamw_step(pb, gb, m, v, Tensor(), h), Error);
  EXPECT_NO_THROW(cpu().adamw_step(pb, gb, m, v, Tensor::zeros({3}, DType::f32), h));
  EXPECT_THROW(cpu().adamw_step(pb, gb, m, v, Tensor::zeros({3}, DType::bf16), h), Error);
  Tensor pi = Tensor::zeros({3}, DType::i32);
  EXPECT_THROW(cpu().adamw_step(pi, pi, m, v, Tensor::zeros({3}, DType::f32), h), Error);
  try {
    cpu().adamw_step(p, g, m, Tensor::zeros({2}, DType::f32), Tensor(), h);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("adamw_step: v"), std::string::npos) << e.what();
  }
}

// ---- squared_norm ----------------------------------------------------------------------------

float squared_norm(const Tensor& x) {
  Tensor out = Tensor::empty({}, DType::f32);
  cpu().squared_norm(x, out);
  return out.item();
}

TEST(CpuOptimizer, SquaredNormKnownValues) {
  EXPECT_EQ(squared_norm(Tensor::from_vector<float>({3.0f, 4.0f}, {2})), 25.0f);
  EXPECT_EQ(squared_norm(Tensor::from_vector<float>({1.0f, -2.0f, 0.5f, 0.0f}, {2, 2})), 5.25f);
  EXPECT_EQ(squared_norm(Tensor::scalar(-3.0f)), 9.0f);
  EXPECT_EQ(squared_norm(Tensor::zeros({0, 7}, DType::f32)), 0.0f);
  EXPECT_EQ(squared_norm(cast_to(Tensor::from_vector<float>({1.5f, -2.0f}, {2}), DType::bf16)),
            6.25f);
  // 100003 ones: every partial sum is exact.
  Tensor ones = Tensor::empty({100003}, DType::f32);
  cpu().fill(ones, 1.0);
  EXPECT_EQ(squared_norm(ones), 100003.0f);
  // Overflow of the f32 result is inf, not UB; NaN propagates.
  EXPECT_TRUE(std::isinf(squared_norm(Tensor::from_vector<float>({3e19f, 3e19f}, {2}))));
  EXPECT_TRUE(std::isnan(squared_norm(Tensor::from_vector<float>({1.0f, NAN}, {2}))));
}

TEST(CpuOptimizer, SquaredNormMatchesDoubleSumAndIgnoresThreadCount) {
  Tensor x = random_tensor({100003}, 5, -3.0f, 3.0f);
  double want = 0.0;
  for (float e : x.to_vector<float>()) want += static_cast<double>(e) * e;
  float one, three;
  {
    ScopedThreads threads(1);
    one = squared_norm(x);
  }
  {
    ScopedThreads threads(3);
    three = squared_norm(x);
  }
  EXPECT_EQ(std::memcmp(&one, &three, sizeof one), 0) << one << " vs " << three;
  EXPECT_NEAR(one, want, 1e-6 * want);
}

TEST(CpuOptimizer, SquaredNormErrors) {
  Tensor x = Tensor::zeros({3}, DType::f32);
  EXPECT_THROW(cpu().squared_norm(x, Tensor::empty({1}, DType::f32)), Error);
  EXPECT_THROW(cpu().squared_norm(x, Tensor::empty({}, DType::bf16)), Error);
  EXPECT_THROW(cpu().squared_norm(Tensor::zeros({3}, DType::i32), Tensor::empty({}, DType::f32)),
               Error);
  EXPECT_THROW(cpu().squared_norm(Tensor(), Tensor::empty({}, DType::f32)), Error);
}

}  // namespace
}  // namespace rlaif
