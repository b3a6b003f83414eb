// Memory primitives of the CPU reference: fill, copy, cast, the Philox random fills and concat.
//
// fill, copy, cast and concat take every dtype; the conversions between element types are
// runtime/element_convert.h's, shared with the CUDA backend.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_checks.h"
#include "runtime/element_convert.h"
#include "runtime/philox.h"

namespace rlaif {

void CpuBackend::fill(const Tensor& out, double value) {
  cpu::expect("fill", "out", out, out.dtype());
  visit_dtype(out.dtype(), "fill", [&](auto tag) {
    using T = decltype(tag);
    T v;
    if constexpr (is_float_v<T>)
      v = narrow<T>(static_cast<float>(value));
    else
      v = float_to_int<T>(value);  // from the double itself: large i64 values stay exact
    T* p = out.data<T>();
    std::fill(p, p + out.numel(), v);
  });
}

void CpuBackend::copy(const Tensor& src, const Tensor& dst) {
  cpu::expect("copy", "src", src, src.dtype());
  cpu::expect("copy", "dst", dst, src.dtype());
  RLAIF_CHECK(src.numel() == dst.numel(), "copy: src ", src, " and dst ", dst,
              " must have the same number of elements");
  if (src.nbytes() == 0 || src.raw_data() == dst.raw_data()) return;
  // memmove: copying between overlapping views of one storage is still well defined.
  std::memmove(dst.raw_data(), src.raw_data(), src.nbytes());
}

void CpuBackend::cast(const Tensor& src, const Tensor& dst) {
  cpu::expect("cast", "src", src, src.dtype());
  cpu::expect("cast", "dst", dst, dst.dtype());
  RLAIF_CHECK(src.numel() == dst.numel(), "cast: src ", src, " and dst ", dst,
              " must have the same number of elements");
  if (src.dtype() == dst.dtype()) {
    copy(src, dst);
    return;
  }
  visit_dtype(src.dtype(), "cast", [&](auto from_tag) {
    using From = decltype(from_tag);
    visit_dtype(dst.dtype(), "cast", [&](auto to_tag) {
      using To = decltype(to_tag);
      const From* s = src.data<From>();
      To* d = dst.data<To>();
      cpu::parallel_for(src.numel(), 1, [&](int64_t i) { d[i] = convert_element<To>(s[i]); });
    });
  });
}

void CpuBackend::random_uniform(const Tensor& out, uint64_t seed, uint64_t offset, float lo,
                                float hi) {
  cpu::expect("random_uniform", "out", out, DType::f32);
  float* p = out.data<float>();
  // The expression is part of the stream's definition: other backends evaluate it in f32 too.
  cpu::parallel_for(out.numel(), 16, [&](int64_t i) {
    p[i] = lo + (hi - lo) * philox_uniform(seed, offset + static_cast<uint64_t>(i));
  });
}

void CpuBackend::random_normal(const Tensor& out, uint64_t seed, uint64_t offset, float mean,
                               float std) {
  cpu::expect("random_normal", "out", out, DType::f32);
  float* p = out.data<float>();
  cpu::parallel_for(out.numel(), 64, [&](int64_t i) {
    p[i] = mean + std * philox_normal(seed, offset + static_cast<uint64_t>(i));
  });
}

void CpuBackend::concat(const std::vector<Tensor>& inputs, const Tensor& out) {
  cpu::expect("concat", "out", out, out.dtype());
  RLAIF_CHECK(out.dim() >= 1, "concat: out ", out, " needs a leading dimension");
  const Shape row_shape(out.shape().begin() + 1, out.shape().end());
  int64_t total_rows = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    const std::string name = "inputs[" + std::to_string(i) + "]";
    cpu::expect("concat", name.c_str(), in, out.dtype());
    const bool same_rows =
        in.dim() == out.dim() && Shape(in.shape().begin() + 1, in.shape().end()) == row_shape;
    RLAIF_CHECK(same_rows, "concat: ", name, " is ", in, " but must have out's shape ", out,
                " apart from dimension 0");
    total_rows += in.size(0);
  }
  RLAIF_CHECK(total_rows == out.size(0), "concat: the inputs have ", total_rows,
              " rows in all but out ", out, " has ", out.size(0));
  // The inputs are contiguous, so stacking along dimension 0 is one byte copy per input.
  char* dst = static_cast<char*>(out.raw_data());
  for (const Tensor& in : inputs) {
    if (in.nbytes() == 0) continue;
    std::memmove(dst, in.raw_data(), in.nbytes());
    dst += in.nbytes();
  }
}

}  // namespace rlaif
