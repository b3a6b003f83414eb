// CPU SwiGLU, forward and backward, checked against double-precision formulas and finite
// differences.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/backend.h"
#include "tests/kernels/conformance.h"
#include "tests/support/backends.h"

namespace rlaif {
namespace {

using testing::random_tensor;

using test::cpu;

// silu(g)·u in double, written independently of the kernel (σ via tanh: no overflow either).
double swiglu_ref(double g, double u) {
  return g * 0.5 * (1.0 + std::tanh(0.5 * g)) * u;
}

TEST(CpuActivation, SwigluMatchesDoubleFormula) {
  // Odd size, values wide enough to reach both tails of the sigmoid.
  Tensor gate = random_tensor({3, 13}, 1, -12.0f, 12.0f);
  Tensor up = random_tensor({3, 13}, 2, -2.0f, 2.0f);
  Tensor out = Tensor::empty({3, 13}, DType::f32);
  cpu().swiglu(gate, up, out);
  for (int64_t i = 0; i < gate.numel(); ++i) {
    const double want = swiglu_ref(gate.data<float>()[i], up.data<float>()[i]);
    EXPECT_NEAR(out.data<float>()[i], want, 1e-6 * (1.0 + std::fabs(want))) << i;
  }
}

TEST(CpuActivation, SwigluIsFiniteForExtremeGates) {
  // silu(-1000) = -1000·e^-1000 ≈ -0; silu(1000) = 1000; no inf or NaN from e^±1000.
  Tensor gate = Tensor::from_vector(std::vector<float>{-1000.0f, 1000.0f, -88.0f, 0.0f}, {4});
  Tensor up = Tensor::from_vector(std::vector<float>{1.0f, 2.0f, 1.0f, 5.0f}, {4});
  Tensor out = Tensor::empty({4}, DType::f32);
  cpu().swiglu(gate, up, out);
  EXPECT_EQ(out.data<float>()[0], 0.0f);
  EXPECT_EQ(out.data<float>()[1], 2000.0f);
  EXPECT_NEAR(out.data<float>()[2], -88.0 * std::exp(-88.0), 1e-40);
  EXPECT_EQ(out.data<float>()[3], 0.0f);

  Tensor dout = Tensor::from_vector(std::vector<float>{1.0f, 1.0f, 1.0f, 1.0f}, {4});
  Tensor dgate = Tensor::empty({4}, DType::f32), dup = Tensor::empty({4}, DType::f32);
  cpu().swiglu_backward(gate, up, dout, dgate, dup);
  EXPECT_EQ(dgate.data<float>()[0], 0.0f);  // silu'(-∞) = 0
  EXPECT_EQ(dgate.data<float>()[1], 2.0f);  // silu'(+∞) = 1, times up = 2
  EXPECT_EQ(dgate.data<float>()[3], 2.5f);  // silu'(0) = 1/2, times up = 5
  EXPECT_EQ(dup.data<float>()[1], 1000.0f);
}

TEST(CpuActivation, SwigluBackwardMatchesFiniteDifferences) {
  const Shape shape = {2, 7, 3};
  Tensor gate = random_tensor(shape, 3, -6.0f, 6.0f);
  Tensor up = random_tensor(shape, 4, -2.0f, 2.0f);
  Tensor dout = random_tensor(shape, 5);
  Tensor dgate = Tensor::empty(shape, DType::f32), dup = Tensor::empty(shape, DType::f32);
  cpu().swiglu_backward(gate, up, dout, dgate, dup);
  const double h = 1e-6;
  for (int64_t i = 0; i < gate.numel(); ++i) {
    const double g = gate.data<float>()[i], u = up.data<float>()[i], dy = dout.data<float>()[i];
    const double want_dgate = dy * (swiglu_ref(g + h, u) - swiglu_ref(g - h, u)) / (2 * h);
    const double want_dup = dy * (swiglu_ref(g, u + h) - swiglu_ref(g, u - h)) / (2 * h);
    EXPECT_NEAR(dgate.data<float>()[i], want_dgate, 1e-6 * (1.0 + std::fabs(want_dgate))) << i;
    EXPECT_NEAR(dup.data<float>()[i], want_dup, 1e-6 * (1.0 + std::fabs(want_dup))) << i;
  }
}

TEST(CpuActivation, SwigluInPlace) {
  Tensor gate = random_tensor({5, 9}, 6, -4.0f, 4.0f), up = random_tensor({5, 9}, 7);
  Tensor dout = random_tensor({5, 9}, 8);
  Tensor want = Tensor::empty({5, 9}, DType::f32);
  Tensor want_dgate = Tensor::empty({5, 9}, DType::f32),
         want_dup = Tensor::empty({5, 9}, DType::f32);
  cpu().swiglu(gate, up, want);
  cpu().swiglu_backward(gate, up, dout, want_dgate, want_dup);

  // Backward writing over its inputs: dgate over gate, dup over up.
  Tensor g = gate.clone(), u = up.clone();
  cpu().swiglu_backward(g, u, dout, g, u);
  EXPECT_EQ(g.to_vector<float>(), want_dgate.to_vector<float>());
  EXPECT_EQ(u.to_vector<float>(), want_dup.to_vector<float>());
  // Forward writing over gate.
  cpu().swiglu(gate, up, gate);
  EXPECT_EQ(gate.to_vector<float>(), want.to_vector<float>());
}

TEST(CpuActivation, BadArgumentsAreErrors) {
  Tensor a = random_tensor({4, 6}, 9);
  Tensor out = Tensor::empty({4, 6}, DType::f32);
  EXPECT_THROW(cpu().swiglu(a, random_tensor({4, 5}, 10), out), Error);
  EXPECT_THROW(cpu().swiglu(a, a, Tensor::empty({24}, DType::f32)), Error);
  EXPECT_THROW(cpu().swiglu(Tensor::empty({4, 6}, DType::bf16), a, out), Error);
  EXPECT_THROW(cpu().swiglu_backward(a, a, a, out, Tensor::empty({4, 7}, DType::f32)), Error);
  EXPECT_THROW(cpu().swiglu_backward(a, a, Tensor::empty({4, 6}, DType::i32), out, out), Error);
  EXPECT_THROW(cpu().swiglu_backward(a, a, a, Tensor(), out), Error);
}

}  // namespace
}  // namespace rlaif
