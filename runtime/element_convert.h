// Element conversions between dtypes, written once for the CPU reference (cpu_memory.cpp) and the
// CUDA kernels (cuda_memory.cu): both compile these functions (RLAIF_HD), so fill and cast give
// the same bits on every backend.
//
// - float → float: through f32 (half.h's widen, then narrow: round to nearest even).
// - float → integer: truncate toward zero; NaN gives 0 and values outside the target's range
//   saturate, as CUDA's __float2int_rz family does, so every input has a defined result (a plain
//   static_cast would be undefined behaviour there). Done in double, so that large i64 fill values
//   stay exact.
// - integer → float: to f32 rounding to nearest (the hardware conversion), then narrowed. For
//   bf16/f16 this rounds twice, which can differ from one rounding only for |v| > 2^24.
// - integer → integer: C++'s modular conversion.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

#include "runtime/dtype.h"
#include "runtime/error.h"
#include "runtime/half.h"
#include "runtime/host_device.h"

namespace rlaif {

template <typename T>
inline constexpr bool is_half_v = std::is_same_v<T, bf16_t> || std::is_same_v<T, f16_t>;
template <typename T>
inline constexpr bool is_float_v = std::is_same_v<T, float> || is_half_v<T>;

// Calls f(T{}) with T the C++ element type of `dtype` (half.h's structs for the 16-bit floats),
// so one template body serves every dtype. `op` names the caller in the error for an unknown one.
template <typename F>
void visit_dtype(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::f32:
      f(float{});
      return;
    case DType::bf16:
      f(bf16_t{});
      return;
    case DType::f16:
      f(f16_t{});
      return;
    case DType::i32:
      f(int32_t{});
      return;
    case DType::i64:
      f(int64_t{});
      return;
    case DType::u8:
      f(uint8_t{});
      return;
  }
  throw Error(op, ": unknown dtype ", static_cast<int>(dtype));
}

template <typename To>
RLAIF_HD To float_to_int(double v) {
  if (v != v) return 0;  // NaN (std::isnan is host-only)
  constexpr To lo = std::numeric_limits<To>::min();
  constexpr To hi = std::numeric_limits<To>::max();
  if (v <= static_cast<double>(lo)) return lo;
  if (v >= static_cast<double>(hi)) return hi;
  return static_cast<To>(v);
}

// One element from From to To by the rules above.
template <typename To, typename From>
RLAIF_HD To convert_element(From v) {
  if constexpr (is_float_v<From>) {
    const float f = widen(v);
    if constexpr (is_float_v<To>)
      return narrow<To>(f);
    else
      return float_to_int<To>(static_cast<double>(f));
  } else if constexpr (is_float_v<To>) {
    return narrow<To>(static_cast<float>(v));
  } else {
    return static_cast<To>(v);
  }
}

}  // namespace rlaif
