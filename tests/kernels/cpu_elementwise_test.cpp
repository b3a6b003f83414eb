// CPU elementwise primitives, checked against closed forms evaluated in double, and the backward
// passes against central differences of those closed forms.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>
#include <vector>

#include "kernels/backend.h"
#include "tests/kernels/conformance.h"
#include "tests/support/backends.h"

namespace rlaif {
namespace {

using testing::random_tensor;

using test::cpu;

const UnaryOp kUnaryOps[] = {UnaryOp::neg,  UnaryOp::exp,       UnaryOp::log,
                             UnaryOp::sqrt, UnaryOp::square,    UnaryOp::abs,
                             UnaryOp::relu, UnaryOp::sigmoid,   UnaryOp::log_sigmoid,
                             UnaryOp::tanh, UnaryOp::gelu_tanh, UnaryOp::silu};
const BinaryOp kBinaryOps[] = {BinaryOp::add, BinaryOp::sub,     BinaryOp::mul,
                               BinaryOp::div, BinaryOp::minimum, BinaryOp::maximum};

// The definitions of backend.h, in double.
double unary_ref(UnaryOp op, double x) {
  switch (op) {
    case UnaryOp::neg:
      return -x;
    case UnaryOp::exp:
      return std::exp(x);
    case UnaryOp::log:
      return std::log(x);
    case UnaryOp::sqrt:
      return std::sqrt(x);
    case UnaryOp::square:
      return x * x;
    case UnaryOp::abs:
      return std::fabs(x);
    case UnaryOp::relu:
      return x > 0 ? x : 0.0;
    case UnaryOp::sigmoid:
      return 1.0 / (1.0 + std::exp(-x));
    case UnaryOp::log_sigmoid:
      return -std::log1p(std::exp(-x));
    case UnaryOp::tanh:
      return std::tanh(x);
    case UnaryOp::gelu_tanh: {
      double u = std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x);
      return 0.5 * x * (1.0 + std::tanh(u));
    }
    case UnaryOp::silu:
      return x / (1.0 + std::exp(-x));
  }
  return 0.0;
}

// Inputs inside each op's domain and away from kinks (x = 0 for abs and relu).
Tensor unary_input(UnaryOp op, const Shape& shape, uint64_t seed) {
  if (op == UnaryOp::log || op == UnaryOp::sqrt) return random_tensor(shape, seed, 0.25f, 4.0f);
  Tensor x = random_tensor(shape, seed, -4.0f, 4.0f);
  float* p = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (std::fabs(p[i]) < 1e-2f) p[i] = 0.5f;
  }
  return x;
}

bool close(double got, double want, double atol, double rtol) {
  return std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

TEST(CpuElementwise, UnaryMatchesDoubleClosedForms) {
  for (UnaryOp op : kUnaryOps) {
    for (const Shape& shape : {Shape{7, 13}, Shape{1}, Shape{2, 3, 5}, Shape{0, 4}}) {
      Tensor x = unary_input(op, shape, 1);
      Tensor out = Tensor::empty(shape, DType::f32);
      cpu().unary(op, x, out);
      const float* xp = x.data<float>();
      const float* o = out.data<float>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        double want = unary_ref(op, xp[i]);
        ASSERT_TRUE(close(o[i], want, 1e-6, 1e-5))
            << unary_op_name(op) << "(" << xp[i] << ") = " << o[i] << ", want " << want;
      }
    }
  }
}

// The CPU computes tanh (and GELU's tanh and sech²) from one exp in double rather than glibc's
// slow tanhf/coshf; this holds it to an ulp over a dense sweep, tiny, huge and special inputs.
TEST(CpuElementwise, TanhAndGeluAreWithinAnUlp) {
  std::vector<float> xs;
  for (int i = -200000; i <= 200000; ++i) xs.push_back(static_cast<float>(i) * 1e-4f);  // ±20
  for (float v = 1e-12f; v < 1.0f; v *= 1.37f) {
    xs.push_back(v);
    xs.push_back(-v);
  }
  for (float v : {0.0f, -0.0f, 9.9e-5f, 1e-4f, 1.01e-4f, 50.0f, -50.0f, 400.0f, -1e30f, 1e30f})
    xs.push_back(v);
  const auto n = static_cast<int64_t>(xs.size());
  Tensor x = Tensor::from_vector(xs, {n});
  Tensor y = Tensor::empty({n}, DType::f32), dx = Tensor::empty({n}, DType::f32);
  Tensor ones = Tensor::from_vector(std::vector<float>(xs.size(), 1.0f), {n});
  auto ulp = [](double v) {
    const float f = std::fabs(static_cast<float>(v));
    return static_cast<double>(std::nextafter(f, INFINITY) - f);
  };
  cpu().unary(UnaryOp::tanh, x, y);
  for (int64_t i = 0; i < n; ++i) {
    const double want = std::tanh(static_cast<double>(xs[i]));
    ASSERT_LE(std::fabs(y.data<float>()[i] - want), ulp(want))
        << "tanh(" << xs[i] << ") = " << y.data<float>()[i] << ", want " << want;
  }
  // GELU: the same float arithmetic as llm.c around an exact tanh and sech² of the same u.
  const float scale = std::sqrt(static_cast<float>(2.0 / std::numbers::pi)), cubic = 0.044715f;
  cpu().unary(UnaryOp::gelu_tanh, x, y);
  cpu().unary_backward(UnaryOp::gelu_tanh, x, y, ones, dx);
  for (int64_t i = 0; i < n; ++i) {
    const float v = xs[i];
    if (std::fabs(v) > 1e15f) continue;  // x³ overflows in float: inf or NaN
    const float u = scale * (v + cubic * v * v * v);
    const double t = std::tanh(static_cast<double>(u)), c = std::cosh(static_cast<double>(u));
    const double fwd = 0.5 * v * (1.0 + t);
    const double bwd =
        0.5 * (1.0 + t) + v * 0.5 * (1.0 / (c * c)) * scale * (1.0 + 3.0 * cubic * v * v);
    // A few float roundings around the transcendental part: 4 ulps of the result, or 4 ulps of
    // the terms where 1 + tanh u cancels (x ≪ 0).
    ASSERT_LE(std::fabs(y.data<float>()[i] - fwd), 4 * ulp(fwd) + 4 * ulp(1.0) * std::fabs(0.5 * v))
        << "gelu(" << v << ") = " << y.data<float>()[i] << ", want " << fwd;
    ASSERT_LE(std::fabs(dx.data<float>()[i] - bwd), 4 * ulp(bwd) + 4 * ulp(1.0))
        << "gelu'(" << v << ") = " << dx.data<float>()[i] << ", want " << bwd;
  }
  const float special[] = {NAN, INFINITY};
  Tensor s = Tensor::from_vector(std::vector<float>(special, special + 2), {2});
  Tensor ts = Tensor::empty({2}, DType::f32);
  cpu().unary(UnaryOp::tanh, s, ts);
  EXPECT_TRUE(std::isnan(ts.data<float>()[0]));
  EXPECT_EQ(ts.data<float>()[1], 1.0f);
}

TEST(CpuElementwise, SigmoidFamilyIsStableForLargeInputs) {
  Tensor x = Tensor::from_vector<float>({-1000.0f, -100.0f, -20.0f, 20.0f, 100.0f, 1000.0f}, {6});
  Tensor out = Tensor::empty({6}, DType::f32);
  cpu().unary(UnaryOp::log_sigmoid, x, out);
  std::vector<float> ls = out.to_vector<float>();
  EXPECT_EQ(ls[0], -1000.0f);
  EXPECT_EQ(ls[1], -100.0f);
  EXPECT_NEAR(ls[2], -20.0, 1e-6);
  EXPECT_NEAR(ls[3], -std::exp(-20.0), 1e-15);  // log1p keeps the tiny value
  EXPECT_LE(ls[4], 0.0f);
  EXPECT_GT(ls[4], -1e-40f);
  EXPECT_EQ(ls[5], 0.0f);

  cpu().unary(UnaryOp::sigmoid, x, out);
  std::vector<float> s = out.to_vector<float>();
  EXPECT_EQ(s[0], 0.0f);
  EXPECT_EQ(s[5], 1.0f);
  for (float v : s) EXPECT_FALSE(std::isnan(v));

  cpu().unary(UnaryOp::silu, x, out);
  std::vector<float> si = out.to_vector<float>();
  EXPECT_EQ(si[0], 0.0f);
  EXPECT_EQ(si[5], 1000.0f);

  // The backward passes stay finite too.
  Tensor dx = Tensor::empty({6}, DType::f32);
  Tensor ones = Tensor::empty({6}, DType::f32);
  cpu().fill(ones, 1.0);
  for (UnaryOp op :
       {UnaryOp::sigmoid, UnaryOp::log_sigmoid, UnaryOp::silu, UnaryOp::gelu_tanh, UnaryOp::tanh}) {
    cpu().unary(op, x, out);
    cpu().unary_backward(op, x, out, ones, dx);
    for (float v : dx.to_vector<float>()) EXPECT_TRUE(std::isfinite(v)) << unary_op_name(op);
  }
  cpu().unary_backward(UnaryOp::log_sigmoid, x, out, ones, dx);
  EXPECT_EQ(dx.to_vector<float>()[0], 1.0f);  // 1 - σ(-1000)
  EXPECT_EQ(dx.to_vector<float>()[5], 0.0f);  // 1 - σ(1000)
}

TEST(CpuElementwise, UnaryBackwardMatchesCentralDifferences) {
  for (UnaryOp op : kUnaryOps) {
    for (const Shape& shape : {Shape{7, 13}, Shape{1}}) {
      Tensor x = unary_input(op, shape, 2);
      Tensor y = Tensor::empty(shape, DType::f32), dx = Tensor::empty(shape, DType::f32);
      Tensor dy = random_tensor(shape, 3);
      cpu().unary(op, x, y);
      cpu().unary_backward(op, x, y, dy, dx);
      const float* xp = x.data<float>();
      const float* g = dy.data<float>();
      const float* d = dx.data<float>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        const double h = 1e-5;
        double slope = (unary_ref(op, xp[i] + h) - unary_ref(op, xp[i] - h)) / (2 * h);
        double want = g[i] * slope;
        ASSERT_TRUE(close(d[i], want, 1e-5, 1e-5)) << unary_op_name(op) << "'(" << xp[i] << ") · "
                                                   << g[i] << " = " << d[i] << ", want " << want;
      }
    }
  }
}

TEST(CpuElementwise, UnaryBackwardAtKinks) {
  // abs and relu have gradient 0 at 0 (as torch).
  Tensor x = Tensor::from_vector<float>({0.0f, -0.0f}, {2});
  Tensor y = Tensor::empty({2}, DType::f32), dx = Tensor::empty({2}, DType::f32);
  Tensor dy = Tensor::from_vector<float>({3.0f, 3.0f}, {2});
  for (UnaryOp op : {UnaryOp::abs, UnaryOp::relu}) {
    cpu().unary(op, x, y);
    cpu().unary_backward(op, x, y, dy, dx);
    EXPECT_EQ(dx.to_vector<float>(), (std::vector<float>{0.0f, 0.0f})) << unary_op_name(op);
  }
}

TEST(CpuElementwise, UnaryWorksInPlace) {
  Tensor x = random_tensor({7, 13}, 4);
  Tensor want = Tensor::empty({7, 13}, DType::f32);
  cpu().unary(UnaryOp::gelu_tanh, x, want);
  cpu().unary(UnaryOp::gelu_tanh, x, x);
  EXPECT_EQ(x.to_vector<float>(), want.to_vector<float>());
}

double binary_ref(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::add:
      return a + b;
    case BinaryOp::sub:
      return a - b;
    case BinaryOp::mul:
      return a * b;
    case BinaryOp::div:
      return a / b;
    case BinaryOp::minimum:
      return std::min(a, b);
    case BinaryOp::maximum:
      return std::max(a, b);
  }
  return 0.0;
}

// Gradients (∂/∂a, ∂/∂b), ties to a.
std::pair<double, double> binary_grad_ref(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::add:
      return {1, 1};
    case BinaryOp::sub:
      return {1, -1};
    case BinaryOp::mul:
      return {b, a};
    case BinaryOp::div:
      return {1 / b, -a / (b * b)};
    case BinaryOp::minimum:
      return a <= b ? std::pair{1.0, 0.0} : std::pair{0.0, 1.0};
    case BinaryOp::maximum:
      return a >= b ? std::pair{1.0, 0.0} : std::pair{0.0, 1.0};
  }
  return {0, 0};
}

// (a shape, b shape) pairs: same shape, suffixes, one-element b.
const std::vector<std::pair<Shape, Shape>> kBroadcasts = {
    {{7, 13}, {7, 13}}, {{7, 13}, {13}}, {{2, 3, 5}, {3, 5}}, {{2, 3, 5}, {5}},
    {{7, 13}, {1}},     {{7, 13}, {}},   {{1}, {1}},          {{0, 5}, {5}},
};

// b values kept away from 0 for div; ties planted for minimum/maximum.
std::pair<Tensor, Tensor> binary_inputs(const Shape& sa, const Shape& sb, uint64_t seed) {
  Tensor a = random_tensor(sa, seed), b = random_tensor(sb, seed + 1, 0.5f, 2.0f);
  float* bp = b.data<float>();
  for (int64_t j = 0; j < b.numel(); j += 2) bp[j] = -bp[j];
  if (a.numel() > 0 && b.numel() > 0) a.data<float>()[0] = bp[0];  // a tie
  return {a, b};
}

TEST(CpuElementwise, BinaryBroadcastsSuffixesAndScalars) {
  for (BinaryOp op : kBinaryOps) {
    for (const auto& [sa, sb] : kBroadcasts) {
      auto [a, b] = binary_inputs(sa, sb, 5);
      Tensor out = Tensor::empty(sa, DType::f32);
      cpu().binary(op, a, b, out);
      const float* ap = a.data<float>();
      const float* bp = b.data<float>();
      const float* o = out.data<float>();
      for (int64_t i = 0; i < a.numel(); ++i) {
        double want = binary_ref(op, ap[i], bp[i % b.numel()]);
        ASSERT_TRUE(close(o[i], want, 0, 1e-7)) << binary_op_name(op) << " a " << shape_str(sa)
                                                << " b " << shape_str(sb) << " at " << i;
      }
    }
  }
}

TEST(CpuElementwise, BinaryBackwardMatchesClosedFormsAndSumsBroadcastDims) {
  for (BinaryOp op : kBinaryOps) {
    for (const auto& [sa, sb] : kBroadcasts) {
      SCOPED_TRACE(::testing::Message()
                   << binary_op_name(op) << " a " << shape_str(sa) << " b " << shape_str(sb));
      auto [a, b] = binary_inputs(sa, sb, 6);
      Tensor dout = random_tensor(sa, 8);
      Tensor da = Tensor::empty(sa, DType::f32), db = Tensor::empty(sb, DType::f32);
      cpu().binary_backward(op, a, b, dout, da, db);
      const float* ap = a.data<float>();
      const float* bp = b.data<float>();
      const float* g = dout.data<float>();
      const int64_t nb = b.numel();
      // db sums f32-rounded terms: its error scales with Σ|terms|, not with the sum.
      std::vector<double> db_want(static_cast<size_t>(nb), 0.0), db_mag(db_want);
      for (int64_t i = 0; i < a.numel(); ++i) {
        auto [ga, gb] = binary_grad_ref(op, ap[i], bp[i % nb]);
        ASSERT_TRUE(close(da.data<float>()[i], g[i] * ga, 1e-7, 1e-6)) << "da at " << i;
        db_want[static_cast<size_t>(i % nb)] += g[i] * gb;
        db_mag[static_cast<size_t>(i % nb)] += std::fabs(g[i] * gb);
      }
      for (int64_t j = 0; j < nb; ++j) {
        ASSERT_TRUE(close(db.data<float>()[j], db_want[j], 1e-6 * (1 + db_mag[j]), 0))
            << "db at " << j;
      }
    }
  }
}

TEST(CpuElementwise, BinaryBackwardOutputsAreOptionalAndMayAlias) {
  Tensor a = random_tensor({7, 13}, 9), b = random_tensor({13}, 10, 0.5f, 2.0f);
  Tensor dout = random_tensor({7, 13}, 11);
  Tensor da = Tensor::empty({7, 13}, DType::f32), db = Tensor::empty({13}, DType::f32);
  cpu().binary_backward(BinaryOp::div, a, b, dout, da, db);
  Tensor da_only = Tensor::empty({7, 13}, DType::f32), db_only = Tensor::empty({13}, DType::f32);
  cpu().binary_backward(BinaryOp::div, a, b, dout, da_only, Tensor());
  cpu().binary_backward(BinaryOp::div, a, b, dout, Tensor(), db_only);
  EXPECT_EQ(da_only.to_vector<float>(), da.to_vector<float>());
  EXPECT_EQ(db_only.to_vector<float>(), db.to_vector<float>());
  // da written over dout (in-place backward) leaves both results unchanged.
  Tensor db2 = Tensor::empty({13}, DType::f32);
  cpu().binary_backward(BinaryOp::div, a, b, dout, dout, db2);
  EXPECT_EQ(dout.to_vector<float>(), da.to_vector<float>());
  EXPECT_EQ(db2.to_vector<float>(), db.to_vector<float>());
}

TEST(CpuElementwise, MinimumAndMaximumSendTiesToA) {
  Tensor a = Tensor::from_vector<float>({1.0f, 2.0f, 3.0f}, {3});
  Tensor b = Tensor::from_vector<float>({1.0f, 1.0f, 5.0f}, {3});
  Tensor g = Tensor::from_vector<float>({10.0f, 20.0f, 30.0f}, {3});
  Tensor da = Tensor::empty({3}, DType::f32), db = Tensor::empty({3}, DType::f32);
  cpu().binary_backward(BinaryOp::minimum, a, b, g, da, db);
  EXPECT_EQ(da.to_vector<float>(), (std::vector<float>{10.0f, 0.0f, 30.0f}));
  EXPECT_EQ(db.to_vector<float>(), (std::vector<float>{0.0f, 20.0f, 0.0f}));
  cpu().binary_backward(BinaryOp::maximum, a, b, g, da, db);
  EXPECT_EQ(da.to_vector<float>(), (std::vector<float>{10.0f, 20.0f, 0.0f}));
  EXPECT_EQ(db.to_vector<float>(), (std::vector<float>{0.0f, 0.0f, 30.0f}));
}

TEST(CpuElementwise, AffineClampAndWhere) {
  Tensor x = random_tensor({7, 13}, 12, -2.0f, 2.0f);
  const std::vector<float> xv = x.to_vector<float>();
  Tensor out = Tensor::empty({7, 13}, DType::f32);
  cpu().affine(x, 3.0f, -0.5f, out);
  std::vector<float> o = out.to_vector<float>();
  for (size_t i = 0; i < xv.size(); ++i) ASSERT_EQ(o[i], 3.0f * xv[i] - 0.5f);

  cpu().clamp(x, -0.5f, 0.75f, out);
  o = out.to_vector<float>();
  for (size_t i = 0; i < xv.size(); ++i) ASSERT_EQ(o[i], std::min(std::max(xv[i], -0.5f), 0.75f));

  std::vector<uint8_t> cv(xv.size());
  for (size_t i = 0; i < cv.size(); ++i) cv[i] = static_cast<uint8_t>(i % 3 == 0 ? 0 : i % 5 + 1);
  Tensor cond = Tensor::from_vector(cv, {7, 13});
  Tensor b = random_tensor({7, 13}, 13);
  cpu().where(cond, x, b, out);
  o = out.to_vector<float>();
  std::vector<float> bv = b.to_vector<float>();
  for (size_t i = 0; i < xv.size(); ++i) ASSERT_EQ(o[i], cv[i] ? xv[i] : bv[i]);

  // In place, and NaN passes through clamp.
  Tensor n = Tensor::from_vector<float>({std::nanf(""), 5.0f}, {2});
  cpu().clamp(n, 0.0f, 1.0f, n);
  EXPECT_TRUE(std::isnan(n.to_vector<float>()[0]));
  EXPECT_EQ(n.to_vector<float>()[1], 1.0f);
}

TEST(CpuElementwise, ClampBackwardIsZeroWhereClampIsActive) {
  // Strict inequalities: x exactly at lo or hi gets 0.
  Tensor x = Tensor::from_vector<float>({-2.0f, -1.0f, 0.0f, 0.5f, 1.0f, 3.0f}, {6});
  Tensor dy = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {6});
  Tensor dx = Tensor::empty({6}, DType::f32);
  cpu().clamp_backward(x, -1.0f, 1.0f, dy, dx);
  EXPECT_EQ(dx.to_vector<float>(), (std::vector<float>{0, 0, 3, 4, 0, 0}));
}

TEST(CpuElementwise, RejectsBadShapesAndDtypes) {
  Tensor x = random_tensor({7, 13}, 1);
  Tensor out = Tensor::empty({7, 13}, DType::f32);
  Tensor x16 = Tensor::empty({7, 13}, DType::bf16);
  cpu().cast(x, x16);
  EXPECT_THROW(cpu().unary(UnaryOp::exp, x, Tensor::empty({13, 7}, DType::f32)), Error);
  EXPECT_THROW(cpu().unary(UnaryOp::exp, x16, out), Error);
  EXPECT_THROW(cpu().unary_backward(UnaryOp::exp, x, x, random_tensor({7, 12}, 2), out), Error);
  EXPECT_THROW(cpu().unary_backward(UnaryOp::exp, x, Tensor(), x, out), Error);
  // b must be a's shape, a suffix of it, or one element.
  EXPECT_THROW(cpu().binary(BinaryOp::add, x, random_tensor({7}, 3), out), Error);
  EXPECT_THROW(cpu().binary(BinaryOp::add, x, random_tensor({2, 7, 13}, 3), out), Error);
  EXPECT_THROW(
      cpu().binary(BinaryOp::add, x, random_tensor({13}, 3), Tensor::empty({13}, DType::f32)),
      Error);
  EXPECT_THROW(cpu().binary_backward(BinaryOp::mul, x, random_tensor({13}, 4), x, out,
                                     Tensor::empty({7, 13}, DType::f32)),
               Error);
  EXPECT_THROW(cpu().affine(x, 1.0f, 0.0f, Tensor::empty({7, 13}, DType::i32)), Error);
  EXPECT_THROW(cpu().clamp(x16, 0.0f, 1.0f, out), Error);
  EXPECT_THROW(cpu().clamp_backward(x, 0.0f, 1.0f, random_tensor({91}, 5), out), Error);
  // where: cond must be u8 of the same shape.
  EXPECT_THROW(cpu().where(x, x, x, out), Error);
  EXPECT_THROW(cpu().where(Tensor::zeros({7, 12}, DType::u8), x, x, out), Error);
}

}  // namespace
}  // namespace rlaif
