// 16-bit floating types and their conversions to and from f32.
//
// bf16 keeps f32's 8-bit exponent and 7 mantissa bits; f16 is IEEE 754 binary16 (5-bit exponent,
// 10 mantissa bits, subnormals). Both conversions from f32 round to nearest, ties to even, as
// CUDA's __float2bfloat16_rn / __float2half_rn do; NaN stays NaN (quiet), overflow gives inf.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "runtime/host_device.h"

namespace rlaif {

struct bf16_t {
  uint16_t bits = 0;
};
struct f16_t {
  uint16_t bits = 0;
};

RLAIF_HD uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
RLAIF_HD float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

RLAIF_HD bf16_t float_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep the sign, force a quiet NaN
    return bf16_t{static_cast<uint16_t>((u >> 16) | 0x0040u)};
  }
  // Adding 0x7fff plus the lowest kept bit rounds to nearest with ties going to the even value.
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16_t{static_cast<uint16_t>(u >> 16)};
}

RLAIF_HD float bf16_to_float(bf16_t h) {
  return bits_float(static_cast<uint32_t>(h.bits) << 16);
}

RLAIF_HD f16_t float_to_f16(float f) {
  uint32_t u = float_bits(f);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return f16_t{static_cast<uint16_t>(sign | 0x7e00u)};   // NaN
  if (abs >= 0x477ff000u) return f16_t{static_cast<uint16_t>(sign | 0x7c00u)};  // rounds to inf
  int exp = static_cast<int>(abs >> 23) - 127;
  uint32_t mant = abs & 0x7fffffu;
  if (exp >= -14) {  // normal f16: keep 10 of 23 mantissa bits, round the 13 dropped ones
    uint32_t h = (static_cast<uint32_t>(exp + 15) << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // carry may bump the exponent
    return f16_t{static_cast<uint16_t>(sign | h)};
  }
  if (exp < -25) return f16_t{sign};  // below half the smallest subnormal: rounds to zero
  // Subnormal f16: value = m · 2^-24 with m = full mantissa (implicit 1) >> shift.
  uint32_t full = mant | 0x800000u;
  int shift = -exp - 1;  // 14..24 bits dropped (exp = -15 → 14)
  uint32_t h = full >> shift;
  uint32_t rest = full & ((1u << shift) - 1u);
  uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (h & 1u))) ++h;
  return f16_t{static_cast<uint16_t>(sign | h)};
}

RLAIF_HD float f16_to_float(f16_t h) {
  uint32_t sign = static_cast<uint32_t>(h.bits & 0x8000u) << 16;
  uint32_t exp = (h.bits >> 10) & 0x1fu;
  uint32_t mant = h.bits & 0x3ffu;
  if (exp == 0x1fu) return bits_float(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp == 0) {
    if (mant == 0) return bits_float(sign);
    // Subnormal: mant · 2^-24, exact in f32.
    float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

// Any float element type to f32 (exact), and f32 to any float element type (to nearest, ties to
// even): the one place kernels convert element types.
template <typename T>
RLAIF_HD float widen(T v) {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else if constexpr (std::is_same_v<T, bf16_t>) {
    return bf16_to_float(v);
  } else {
    return f16_to_float(v);
  }
}

template <typename To>
RLAIF_HD To narrow(float f) {
  if constexpr (std::is_same_v<To, float>) {
    return f;
  } else if constexpr (std::is_same_v<To, bf16_t>) {
    return float_to_bf16(f);
  } else {
    return float_to_f16(f);
  }
}

}  // namespace rlaif
