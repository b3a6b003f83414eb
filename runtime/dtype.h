// Element types a Tensor can hold, their sizes and names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/half.h"

namespace rlaif {

enum class DType : uint8_t { f32, bf16, f16, i32, i64, u8 };

// Bytes per element.
size_t dtype_size(DType dtype);
// "f32", "bf16", ... (the names the CLI and error messages use).
const char* dtype_name(DType dtype);
// Inverse of dtype_name; throws Error naming the text for an unknown dtype.
DType parse_dtype(std::string_view name);
bool is_floating(DType dtype);

// Maps a C++ element type to its DType, so Tensor::data<T>() can check what it hands out.
template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::f32;
};
template <>
struct DTypeOf<bf16_t> {
  static constexpr DType value = DType::bf16;
};
template <>
struct DTypeOf<f16_t> {
  static constexpr DType value = DType::f16;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::i32;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::i64;
};
template <>
struct DTypeOf<uint8_t> {
  static constexpr DType value = DType::u8;
};

}  // namespace rlaif
