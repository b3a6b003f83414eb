// Memory primitives of the CUDA backend: fill, copy, cast, the Philox random fills and concat.
//
// Design:
// - fill converts the value on the host exactly as the CPU reference does, then writes its bit
//   pattern with a grid-stride kernel: 16-byte stores of the pattern repeated over the aligned
//   body, element stores for the tail.
// - copy and concat are cudaMemcpyAsync on the legacy default stream (copy goes through a
//   temporary when the two ranges overlap, since cudaMemcpy has no memmove semantics).
// - cast is one grid-stride kernel per (from, to) pair. Elements are handled with half.h's own
//   bf16_t / f16_t types and its RLAIF_HD widen / narrow, so 16-bit rounding is the CPU's to the
//   bit, and float → int saturates and truncates: runtime/element_convert.h, shared with the CPU.
// - random_uniform / random_normal call philox.h's stream functions (compiled by nvcc) for
//   element offset + i, so each element is a pure function of (seed, offset + i) whatever the
//   thread layout; the affine map is done with _rn intrinsics so nvcc cannot fuse it into an FMA
//   the (FMA-less) CPU build does not use. bf16 outputs round the f32 value to nearest even.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "kernels/cuda/cuda_common.cuh"
#include "runtime/element_convert.h"
#include "runtime/philox.h"

namespace rlaif::cuda {
namespace {

// ---- Kernels -----------------------------------------------------------------------------------

// p[0, n) = v. The first `nvec` 16-byte words (when the pointer is 16-byte aligned) are written
// with `pattern`, v repeated; the remaining elements one by one.
template <typename U>
__global__ void fill_kernel(U* p, int64_t n, U v, uint4 pattern, int64_t nvec) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  uint4* pv = reinterpret_cast<uint4*>(p);
  for (int64_t k = tid; k < nvec; k += stride) pv[k] = pattern;
  constexpr int64_t kPer = 16 / sizeof(U);
  for (int64_t i = nvec * kPer + tid; i < n; i += stride) p[i] = v;
}

template <typename From, typename To>
__global__ void cast_kernel(const From* src, To* dst, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dst[i] = convert_element<To>(src[i]);
}

// out[i] = lo + range·uniform(seed, offset + i), range = hi - lo computed in f32 as on the CPU.
template <typename T>
__global__ void uniform_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, float lo,
                               float range) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    float u = philox_uniform(seed, offset + static_cast<uint64_t>(i));
    out[i] = narrow<T>(__fadd_rn(lo, __fmul_rn(range, u)));
  }
}

template <typename T>
__global__ void normal_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, float mean,
                              float std) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    float z = philox_normal(seed, offset + static_cast<uint64_t>(i));
    out[i] = narrow<T>(__fadd_rn(mean, __fmul_rn(std, z)));
  }
}

// Writes `value` (already in its element type) over every element of t.
template <typename U>
void fill_bits(const Tensor& t, U value) {
  const int64_t n = t.numel();
  if (n == 0) return;
  U* p = static_cast<U*>(t.raw_data());
  unsigned char bytes[16];
  for (size_t k = 0; k < 16 / sizeof(U); ++k) std::memcpy(bytes + k * sizeof(U), &value, sizeof(U));
  uint4 pattern;
  std::memcpy(&pattern, bytes, sizeof pattern);
  const bool aligned = reinterpret_cast<uintptr_t>(p) % 16 == 0;
  const int64_t nvec = aligned ? n / static_cast<int64_t>(16 / sizeof(U)) : 0;
  const int64_t work = nvec + (n - nvec * static_cast<int64_t>(16 / sizeof(U)));
  fill_kernel<U><<<grid_for(work), kThreads>>>(p, n, value, pattern, nvec);
  check_launch("fill_kernel", describe({{"out", &t}}));
}

// Same-size unsigned type, so that fill writes bit patterns without caring what they mean.
template <typename T>
using Bits =
    std::conditional_t<sizeof(T) == 1, uint8_t,
                       std::conditional_t<sizeof(T) == 2, uint16_t,
                                          std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;

// Float output of the random fills: f32, or bf16 rounded from the f32 value.
template <typename Body>
void dispatch_random_out(const char* op, const Tensor& out, Body&& body) {
  expect_float(op, "out", out);
  if (out.dtype() == DType::f32)
    body(float{});
  else
    body(bf16_t{});
}

}  // namespace

void CudaBackend::fill(const Tensor& out, double value) {
  expect_cuda("fill", "out", out);
  visit_dtype(out.dtype(), "fill", [&](auto tag) {
    using T = decltype(tag);
    T v;
    if constexpr (is_float_v<T>)
      v = narrow<T>(static_cast<float>(value));
    else
      v = float_to_int<T>(value);  // from the double itself: large i64 values stay exact
    Bits<T> bits;
    static_assert(sizeof bits == sizeof v);
    std::memcpy(&bits, &v, sizeof v);
    fill_bits(out, bits);
  });
}

void CudaBackend::copy(const Tensor& src, const Tensor& dst) {
  expect_cuda("copy", "src", src);
  expect_dtype("copy", "dst", dst, src.dtype());
  RLAIF_CHECK(src.numel() == dst.numel(), "copy: src ", src, " and dst ", dst,
              " must have the same number of elements");
  const size_t bytes = src.nbytes();
  const char* s = static_cast<const char*>(src.raw_data());
  char* d = static_cast<char*>(dst.raw_data());
  if (bytes == 0 || s == d) return;
  const std::string detail = describe({{"src", &src}, {"dst", &dst}});
  if (s < d + bytes && d < s + bytes) {
    // Overlapping views of one storage: stage through a temporary (freed memory is reused only
    // by later work on the same stream, so releasing it right away is safe).
    Tensor tmp = Tensor::empty({src.numel()}, src.dtype(), src.device());
    check_cuda(cudaMemcpyAsync(tmp.raw_data(), s, bytes, cudaMemcpyDeviceToDevice, 0),
               "copy (cudaMemcpyAsync)", detail);
    check_cuda(cudaMemcpyAsync(d, tmp.raw_data(), bytes, cudaMemcpyDeviceToDevice, 0),
               "copy (cudaMemcpyAsync)", detail);
    return;
  }
  check_cuda(cudaMemcpyAsync(d, s, bytes, cudaMemcpyDeviceToDevice, 0), "copy (cudaMemcpyAsync)",
             detail);
}

void CudaBackend::cast(const Tensor& src, const Tensor& dst) {
  expect_cuda("cast", "src", src);
  expect_cuda("cast", "dst", dst);
  RLAIF_CHECK(src.numel() == dst.numel(), "cast: src ", src, " and dst ", dst,
              " must have the same number of elements");
  if (src.dtype() == dst.dtype()) {
    copy(src, dst);
    return;
  }
  const int64_t n = src.numel();
  if (n == 0) return;
  visit_dtype(src.dtype(), "cast", [&](auto from_tag) {
    using From = decltype(from_tag);
    visit_dtype(dst.dtype(), "cast", [&](auto to_tag) {
      using To = decltype(to_tag);
      if constexpr (!std::is_same_v<From, To>) {  // equal dtypes went to copy above
        cast_kernel<From, To><<<grid_for(n), kThreads>>>(static_cast<const From*>(src.raw_data()),
                                                         static_cast<To*>(dst.raw_data()), n);
        check_launch("cast_kernel", describe({{"src", &src}, {"dst", &dst}}));
      }
    });
  });
}

void CudaBackend::random_uniform(const Tensor& out, uint64_t seed, uint64_t offset, float lo,
                                 float hi) {
  dispatch_random_out("random_uniform", out, [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = out.numel();
    if (n == 0) return;
    uniform_kernel<T>
        <<<grid_for(n), kThreads>>>(static_cast<T*>(out.raw_data()), n, seed, offset, lo, hi - lo);
    check_launch("uniform_kernel", describe({{"out", &out}}));
  });
}

void CudaBackend::random_normal(const Tensor& out, uint64_t seed, uint64_t offset, float mean,
                                float std) {
  dispatch_random_out("random_normal", out, [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = out.numel();
    if (n == 0) return;
    normal_kernel<T>
        <<<grid_for(n), kThreads>>>(static_cast<T*>(out.raw_data()), n, seed, offset, mean, std);
    check_launch("normal_kernel", describe({{"out", &out}}));
  });
}

void CudaBackend::concat(const std::vector<Tensor>& inputs, const Tensor& out) {
  expect_cuda("concat", "out", out);
  RLAIF_CHECK(out.dim() >= 1, "concat: out ", out, " needs a leading dimension");
  const Shape row_shape(out.shape().begin() + 1, out.shape().end());
  int64_t total_rows = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    const std::string name = "inputs[" + std::to_string(i) + "]";
    expect_dtype("concat", name.c_str(), in, out.dtype());
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
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    if (in.nbytes() == 0) continue;
    check_cuda(cudaMemcpyAsync(dst, in.raw_data(), in.nbytes(), cudaMemcpyDeviceToDevice, 0),
               "concat (cudaMemcpyAsync)", "inputs[" + std::to_string(i) + "] " + in.str());
    dst += in.nbytes();
  }
}

}  // namespace rlaif::cuda
