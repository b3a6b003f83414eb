// RoPE with arbitrary frequencies (config.json's rope_scaling, model/config.h), composed from
// primitives every backend already has, so that it runs wherever they run:
//   out = x ⊙ C + rotate_half(x) ⊙ S
// with C = cos(pos · f_i) and S = sin(pos · f_i) gathered per token from a [positions, Dh] table
// (an embedding lookup), and rotate_half(x) = x · Rᵀ for the constant signed permutation R with
// rotate_half(x)[i] = -x[i + Dh/2] and rotate_half(x)[i + Dh/2] = x[i] (Hugging Face's
// convention, as the backend's rope kernel uses). Autograd gives the backward pass. Slower than
// the fused kernel, which handles plain RoPE.
#pragma once

#include <vector>

#include "autograd/variable.h"
#include "runtime/tensor.h"

namespace rlaif {

// x [B, T, H, Dh]; positions [B, T] i32; inverse_frequencies: Dh/2 values f_i.
Variable rope_with_frequencies(const Variable& x, const Tensor& positions,
                               const std::vector<double>& inverse_frequencies);

}  // namespace rlaif
