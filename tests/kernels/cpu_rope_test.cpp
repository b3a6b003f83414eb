// CPU rotary position embedding: the rotate-half convention, identities of rotations, and a
// double-precision loop.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/backend.h"
#include "tests/kernels/conformance.h"
#include "tests/support/backends.h"

namespace rlaif {
namespace {

using testing::random_ids;
using testing::random_tensor;

using test::cpu;

// RoPE in double, straight from backend.h's formula. x: [B, T, H, Dh]; positions: [B, T].
std::vector<double> rope_ref(const Tensor& x, const Tensor& positions, double theta, bool inverse) {
  const int64_t b_n = x.size(0), t_n = x.size(1), h_n = x.size(2), dh = x.size(3), half = dh / 2;
  const float* xp = x.data<float>();
  std::vector<double> out(static_cast<size_t>(x.numel()));
  for (int64_t b = 0; b < b_n; ++b) {
    for (int64_t t = 0; t < t_n; ++t) {
      const double pos = positions.data<int32_t>()[b * t_n + t];
      for (int64_t h = 0; h < h_n; ++h) {
        const int64_t base = ((b * t_n + t) * h_n + h) * dh;
        for (int64_t i = 0; i < half; ++i) {
          const double angle = (inverse ? -pos : pos) * std::pow(theta, -2.0 * i / dh);
          const double x1 = xp[base + i], x2 = xp[base + i + half];
          out[base + i] = x1 * std::cos(angle) - x2 * std::sin(angle);
          out[base + i + half] = x2 * std::cos(angle) + x1 * std::sin(angle);
        }
      }
    }
  }
  return out;
}

TEST(CpuRope, MatchesDoubleLoop) {
  // Odd T and H, large positions (where an f32 angle would lose accuracy).
  Tensor x = random_tensor({2, 7, 3, 8}, 1);
  Tensor positions = random_ids({2, 7}, 2, 40000);
  for (bool inverse : {false, true}) {
    Tensor out = Tensor::empty(x.shape(), DType::f32);
    cpu().rope(x, positions, 10000.0f, inverse, out);
    std::vector<double> want = rope_ref(x, positions, 10000.0, inverse);
    for (int64_t i = 0; i < x.numel(); ++i) {
      EXPECT_NEAR(out.data<float>()[i], want[i], 1e-6) << "inverse " << inverse << ", " << i;
    }
  }
}

TEST(CpuRope, RotateHalfPairsFeatureIWithIPlusHalf) {
  // Dh = 4, theta = 100: θ_0 = pos, θ_1 = pos/10. A unit vector on feature i turns towards
  // feature i + half (not towards i + 1, the interleaved GPT-J convention).
  const float c1 = static_cast<float>(std::cos(1.0)), s1 = static_cast<float>(std::sin(1.0));
  const float c01 = static_cast<float>(std::cos(0.1)), s01 = static_cast<float>(std::sin(0.1));
  Tensor x = Tensor::from_vector(std::vector<float>{1, 0, 0, 0, 0, 1, 0, 0}, {1, 1, 2, 4});
  Tensor positions = Tensor::from_vector(std::vector<int32_t>{1}, {1, 1});
  Tensor out = Tensor::empty({1, 1, 2, 4}, DType::f32);
  cpu().rope(x, positions, 100.0f, false, out);
  std::vector<float> want = {c1, 0, s1, 0, 0, c01, 0, s01};
  std::vector<float> got = out.to_vector<float>();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_FLOAT_EQ(got[i], want[i]) << i;
}

TEST(CpuRope, PositionZeroIsTheIdentity) {
  Tensor x = random_tensor({2, 5, 3, 6}, 3);
  Tensor positions = Tensor::zeros({2, 5}, DType::i32);
  Tensor out = Tensor::empty(x.shape(), DType::f32);
  cpu().rope(x, positions, 10000.0f, false, out);
  EXPECT_EQ(out.to_vector<float>(), x.to_vector<float>());
}

TEST(CpuRope, PreservesPairNormsAndInverseUndoesForward) {
  const int64_t dh = 8, half = dh / 2;
  Tensor x = random_tensor({3, 7, 2, dh}, 4);
  Tensor positions = random_ids({3, 7}, 5, 5000);
  Tensor y = Tensor::empty(x.shape(), DType::f32), back = Tensor::empty(x.shape(), DType::f32);
  cpu().rope(x, positions, 500000.0f, false, y);
  cpu().rope(y, positions, 500000.0f, true, back);
  const float* xp = x.data<float>();
  const float* yp = y.data<float>();
  for (int64_t row = 0; row < x.numel() / dh; ++row) {
    for (int64_t i = 0; i < half; ++i) {
      const float* a = xp + row * dh;
      const float* b = yp + row * dh;
      EXPECT_NEAR(std::hypot(b[i], b[i + half]), std::hypot(a[i], a[i + half]), 1e-6);
    }
  }
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_NEAR(back.data<float>()[i], xp[i], 1e-6) << i;
}

TEST(CpuRope, InverseIsTheAdjointSoItIsTheBackwardPass) {
  // For the linear map R, the backward pass is Rᵀ: check <R x, y> = <x, inverse(y)>.
  Tensor x = random_tensor({2, 3, 4, 10}, 6), y = random_tensor({2, 3, 4, 10}, 7);
  Tensor positions = random_ids({2, 3}, 8, 2048);
  Tensor rx = Tensor::empty(x.shape(), DType::f32), ry = Tensor::empty(x.shape(), DType::f32);
  cpu().rope(x, positions, 10000.0f, false, rx);
  cpu().rope(y, positions, 10000.0f, true, ry);
  double lhs = 0.0, rhs = 0.0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    lhs += static_cast<double>(rx.data<float>()[i]) * y.data<float>()[i];
    rhs += static_cast<double>(x.data<float>()[i]) * ry.data<float>()[i];
  }
  EXPECT_NEAR(lhs, rhs, 1e-5);
}

TEST(CpuRope, InPlace) {
  Tensor x = random_tensor({1, 7, 3, 8}, 9);
  Tensor positions = random_ids({1, 7}, 10, 100);
  Tensor want = Tensor::empty(x.shape(), DType::f32);
  cpu().rope(x, positions, 10000.0f, false, want);
  cpu().rope(x, positions, 10000.0f, false, x);
  EXPECT_EQ(x.to_vector<float>(), want.to_vector<float>());
}

TEST(CpuRope, BadArgumentsAreErrors) {
  Tensor x = random_tensor({2, 3, 4, 8}, 11);
  Tensor positions = Tensor::zeros({2, 3}, DType::i32);
  Tensor out = Tensor::empty(x.shape(), DType::f32);
  // Odd head size; not 4-D; positions of the wrong shape or dtype; out of the wrong shape.
  EXPECT_THROW(cpu().rope(random_tensor({2, 3, 4, 7}, 12), positions, 1e4f, false,
                          Tensor::empty({2, 3, 4, 7}, DType::f32)),
               Error);
  EXPECT_THROW(cpu().rope(x.reshape({6, 4, 8}), positions, 1e4f, false, out.reshape({6, 4, 8})),
               Error);
  EXPECT_THROW(cpu().rope(x, Tensor::zeros({3, 2}, DType::i32), 1e4f, false, out), Error);
  EXPECT_THROW(cpu().rope(x, Tensor::zeros({2, 3}, DType::f32), 1e4f, false, out), Error);
  EXPECT_THROW(cpu().rope(x, positions, 1e4f, false, Tensor::empty({2, 3, 4, 6}, DType::f32)),
               Error);
  EXPECT_THROW(cpu().rope(Tensor::empty({2, 3, 4, 8}, DType::bf16), positions, 1e4f, false, out),
               Error);
  EXPECT_THROW(cpu().rope(x, positions, 0.0f, false, out), Error);
}

}  // namespace
}  // namespace rlaif
