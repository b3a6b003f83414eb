// Rotary position embedding (Su et al., 2021) in Hugging Face Llama's rotate-half convention.
//
// Each head vector of size Dh is split into halves; feature i is paired with feature i + half and
// the pair is rotated by θ_i = position · theta^(-2i/Dh):
//   out[i]        = x[i]·cos θ_i - x[i+half]·sin θ_i
//   out[i + half] = x[i+half]·cos θ_i + x[i]·sin θ_i
// The inverse rotates by -θ_i (sin → -sin); since rotations are orthogonal it is also the
// backward pass.
//
// The angle and its cosine and sine are computed in double and rounded to f32 once: positions
// reach tens of thousands, where an f32 angle would already be off by several ulps of a radian.
// The rotated pair is then formed in double from those f32 factors and rounded once more.
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_checks.h"

namespace rlaif {

void CpuBackend::rope(const Tensor& x, const Tensor& positions, float theta, bool inverse,
                      const Tensor& out) {
  const char* op = "rope";
  cpu::expect(op, "x", x, DType::f32);
  RLAIF_CHECK(x.dim() == 4, op, ": x is ", x, " but must be [B, T, H, Dh]");
  const int64_t batch = x.size(0), seq = x.size(1), heads = x.size(2), head_dim = x.size(3);
  RLAIF_CHECK(head_dim % 2 == 0, op, ": x is ", x, " but the head size Dh = ", head_dim,
              " must be even (features i and i + Dh/2 are rotated together)");
  RLAIF_CHECK(theta > 0.0f, op, ": theta = ", theta, " must be positive");
  cpu::expect(op, "positions", positions, DType::i32, {batch, seq});
  cpu::expect(op, "out", out, DType::f32, x.shape());

  const int64_t half = head_dim / 2;
  // Inverse frequencies theta^(-2i/Dh), shared by every token.
  std::vector<double> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    inv_freq[i] = std::pow(static_cast<double>(theta),
                           -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
  }
  const double direction = inverse ? -1.0 : 1.0;

  const float* xp = x.data<float>();
  const int32_t* pos = positions.data<int32_t>();
  float* yp = out.data<float>();
  // One task per token (b, t): its H heads share the same angles.
  cpu::parallel_for(batch * seq, heads * head_dim * 4 + half * 40, [&](int64_t token) {
    std::vector<float> cos_t(static_cast<size_t>(half)), sin_t(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(pos[token]) * inv_freq[i];
      cos_t[i] = static_cast<float>(std::cos(angle));
      sin_t[i] = static_cast<float>(direction * std::sin(angle));
    }
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t base = (token * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        // Both inputs of a pair are read before either output is written: out may alias x.
        const double a = xp[base + i], b = xp[base + i + half];
        const double c = cos_t[i], s = sin_t[i];
        yp[base + i] = static_cast<float>(a * c - b * s);
        yp[base + i + half] = static_cast<float>(b * c + a * s);
      }
    }
  });
}

}  // namespace rlaif
