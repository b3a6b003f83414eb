// The per-element formulas of the CUDA elementwise primitives (cuda_elementwise.cu): each op's
// value and derivative in f32, written with cpu_elementwise.cpp's operations in the same order
// (sigmoid without overflow, log_sigmoid through log1p, llm.c's GELU and its derivative), so
// that f32 results match the CPU reference. The op is a template argument: a kernel built on
// these has no switch in its inner loop.
#pragma once

#include <cuda_runtime.h>

#include "kernels/backend.h"

namespace rlaif::cuda::elementwise {

constexpr float kGeluCubic = 0.044715f;

// σ(x) without overflow: e^-|x| never exceeds 1.
__device__ __forceinline__ float sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

template <UnaryOp OP>
__device__ __forceinline__ float unary_forward(float x, float gelu_scale) {
  if constexpr (OP == UnaryOp::neg) {
    return -x;
  } else if constexpr (OP == UnaryOp::exp) {
    return expf(x);
  } else if constexpr (OP == UnaryOp::log) {
    return logf(x);
  } else if constexpr (OP == UnaryOp::sqrt) {
    return sqrtf(x);
  } else if constexpr (OP == UnaryOp::square) {
    return x * x;
  } else if constexpr (OP == UnaryOp::abs) {
    return fabsf(x);
  } else if constexpr (OP == UnaryOp::relu) {
    return x > 0.0f ? x : 0.0f;
  } else if constexpr (OP == UnaryOp::sigmoid) {
    return sigmoid(x);
  } else if constexpr (OP == UnaryOp::log_sigmoid) {
    // ln σ(x) = min(x, 0) - ln(1 + e^-|x|): the exponent is never positive.
    return fminf(x, 0.0f) - log1pf(expf(-fabsf(x)));
  } else if constexpr (OP == UnaryOp::tanh) {
    return tanhf(x);
  } else if constexpr (OP == UnaryOp::gelu_tanh) {
    float cube = kGeluCubic * x * x * x;
    return 0.5f * x * (1.0f + tanhf(gelu_scale * (x + cube)));
  } else {
    static_assert(OP == UnaryOp::silu);
    return x * sigmoid(x);
  }
}

// op'(x) given x and y = op(x), the same form per op as the CPU reference.
template <UnaryOp OP>
__device__ __forceinline__ float unary_derivative(float x, float y, float gelu_scale) {
  if constexpr (OP == UnaryOp::neg) {
    return -1.0f;
  } else if constexpr (OP == UnaryOp::exp) {
    return y;
  } else if constexpr (OP == UnaryOp::log) {
    return 1.0f / x;
  } else if constexpr (OP == UnaryOp::sqrt) {
    return 0.5f / y;
  } else if constexpr (OP == UnaryOp::square) {
    return 2.0f * x;
  } else if constexpr (OP == UnaryOp::abs) {
    return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
  } else if constexpr (OP == UnaryOp::relu) {
    return x > 0.0f ? 1.0f : 0.0f;
  } else if constexpr (OP == UnaryOp::sigmoid) {
    return y * (1.0f - y);
  } else if constexpr (OP == UnaryOp::log_sigmoid) {
    return sigmoid(-x);  // 1 - σ(x) without the cancellation
  } else if constexpr (OP == UnaryOp::tanh) {
    return 1.0f - y * y;
  } else if constexpr (OP == UnaryOp::gelu_tanh) {
    float cube = kGeluCubic * x * x * x;
    float u = gelu_scale * (x + cube);
    float tanh_u = tanhf(u);
    float cosh_u = coshf(u);
    float sech2_u = 1.0f / (cosh_u * cosh_u);  // cosh overflows to inf for large |u|: sech² = 0
    return 0.5f * (1.0f + tanh_u) +
           x * 0.5f * sech2_u * gelu_scale * (1.0f + 3.0f * kGeluCubic * x * x);
  } else {
    static_assert(OP == UnaryOp::silu);
    float s = sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
  }
}

template <BinaryOp OP>
__device__ __forceinline__ float binary_forward(float a, float b) {
  if constexpr (OP == BinaryOp::add) {
    return a + b;
  } else if constexpr (OP == BinaryOp::sub) {
    return a - b;
  } else if constexpr (OP == BinaryOp::mul) {
    return a * b;
  } else if constexpr (OP == BinaryOp::div) {
    return a / b;
  } else if constexpr (OP == BinaryOp::minimum) {
    return (b < a || isnan(b)) ? b : a;  // a on ties; NaN propagates
  } else {
    static_assert(OP == BinaryOp::maximum);
    return (b > a || isnan(b)) ? b : a;
  }
}

// (∂out/∂a · g, ∂out/∂b · g).
struct Grads {
  float a, b;
};

template <BinaryOp OP>
__device__ __forceinline__ Grads binary_grads(float a, float b, float g) {
  if constexpr (OP == BinaryOp::add) {
    return {g, g};
  } else if constexpr (OP == BinaryOp::sub) {
    return {g, -g};
  } else if constexpr (OP == BinaryOp::mul) {
    return {g * b, g * a};
  } else if constexpr (OP == BinaryOp::div) {
    return {g / b, -g * a / (b * b)};
  } else if constexpr (OP == BinaryOp::minimum) {
    return (b < a || isnan(b)) ? Grads{0.0f, g} : Grads{g, 0.0f};
  } else {
    static_assert(OP == BinaryOp::maximum);
    return (b > a || isnan(b)) ? Grads{0.0f, g} : Grads{g, 0.0f};
  }
}

}  // namespace rlaif::cuda::elementwise
