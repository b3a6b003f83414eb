#include "model/scaled_rope.h"

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "kernels/backend.h"
#include "runtime/error.h"

namespace rlaif {

Variable rope_with_frequencies(const Variable& x, const Tensor& positions,
                               const std::vector<double>& inverse_frequencies) {
  RLAIF_CHECK(x.dim() == 4, "rope: x must be [B, T, H, Dh], got ", x.data());
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), Dh = x.size(3), half = Dh / 2;
  RLAIF_CHECK(static_cast<int64_t>(inverse_frequencies.size()) == half && Dh % 2 == 0,
              "rope: ", inverse_frequencies.size(), " frequencies for a head size of ", Dh);
  RLAIF_CHECK(positions.shape() == Shape({B, T}) && positions.dtype() == DType::i32,
              "rope: positions must be [B, T] i32, got ", positions);
  const Device device = x.device();
  const std::vector<int32_t> pos = positions.to(Device::cpu()).to_vector<int32_t>();
  const int32_t rows = 1 + std::max(0, *std::max_element(pos.begin(), pos.end()));

  // The tables hold rows 0..max position: each angle once, in double, rounded to f32 once.
  std::vector<float> cos_table(static_cast<size_t>(rows * Dh)), sin_table(cos_table.size());
  for (int32_t p = 0; p < rows; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(p) * inverse_frequencies[static_cast<size_t>(i)];
      const size_t at = static_cast<size_t>(p * Dh + i);
      cos_table[at] = cos_table[at + static_cast<size_t>(half)] =
          static_cast<float>(std::cos(angle));
      sin_table[at] = sin_table[at + static_cast<size_t>(half)] =
          static_cast<float>(std::sin(angle));
    }
  }
  // Every head of a token reads its position's row.
  std::vector<int32_t> ids(static_cast<size_t>(B * T * H));
  for (size_t token = 0; token < pos.size(); ++token) {
    std::fill_n(ids.begin() + static_cast<long>(token * static_cast<size_t>(H)), H,
                std::max(0, pos[token]));
  }
  std::vector<float> rotate(static_cast<size_t>(Dh * Dh), 0.0f);  // R [Dh, Dh], rows = outputs
  for (int64_t i = 0; i < half; ++i) {
    rotate[static_cast<size_t>(i * Dh + i + half)] = -1.0f;
    rotate[static_cast<size_t>((i + half) * Dh + i)] = 1.0f;
  }
  auto constant = [&](const std::vector<float>& values, const Shape& shape) {
    Tensor t = Tensor::from_vector(values, shape).to(device);
    if (x.dtype() == DType::f32) return Variable(t);
    Tensor cast = Tensor::empty(shape, x.dtype(), device);  // bf16 models
    backend_for(device).cast(t, cast);
    return Variable(cast);
  };
  const Tensor row_ids = Tensor::from_vector(ids, {B, T, H}).to(device);
  const Variable c = embedding(constant(cos_table, {rows, Dh}), row_ids);
  const Variable s = embedding(constant(sin_table, {rows, Dh}), row_ids);
  const Variable rotated =
      reshape(linear(reshape(x, {B * T * H, Dh}), constant(rotate, {Dh, Dh})), {B, T, H, Dh});
  return add(mul(x, c), mul(rotated, s));
}

}  // namespace rlaif
