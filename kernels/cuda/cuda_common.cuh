// What every CUDA kernel file shares: error checks that name the kernel and the shapes, argument
// checks, f32/bf16 dispatch, conversions, and warp/block reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/shape_checks.h"
#include "runtime/error.h"
#include "runtime/tensor.h"

namespace rlaif::cuda {

using bf16 = __nv_bfloat16;

// ---- Errors
// --------------------------------------------------------------------------------------

// Throws Error("CUDA error in WHAT (DETAIL): message") when err is not cudaSuccess.
void check_cuda(cudaError_t err, const char* what, const std::string& detail = "");
// After a kernel launch: turns a launch error (bad configuration, missing architecture, an
// earlier kernel's fault) into an Error naming the kernel and the tensors it was given.
void check_launch(const char* kernel, const std::string& detail = "");
// "x f32[2, 3] cuda:0, out bf16[...]": what check_launch's detail usually holds.
std::string describe(std::initializer_list<std::pair<const char*, const Tensor*>> tensors);

// ---- Argument checks (each throws Error naming the primitive, the argument and the tensor) -----

// t is defined and on a CUDA device.
void expect_cuda(const char* op, const char* arg, const Tensor& t);
// ... and f32 or bf16.
void expect_float(const char* op, const char* arg, const Tensor& t);
// ... and exactly `dtype`.
void expect_dtype(const char* op, const char* arg, const Tensor& t, DType dtype);
// Both tensors have one dtype.
void expect_same_dtype(const char* op, const char* arg_a, const Tensor& a, const char* arg_b,
                       const Tensor& b);
// The shape checks of every backend (kernels/shape_checks.h).
using rlaif::expect_same_shape;
using rlaif::expect_shape;
using rlaif::last_dim;
using rlaif::rows;

// ---- Pointers and dtype dispatch ---------------------------------------------------------------

template <typename T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

// Calls body(T{}) with T = float or bf16 according to `dtype`; other dtypes are an Error naming op.
template <typename Body>
void dispatch_float(DType dtype, const char* op, Body&& body) {
  if (dtype == DType::f32) {
    body(float{});
  } else if (dtype == DType::bf16) {
    body(bf16{});
  } else {
    throw Error(op, ": the cuda backend computes floats in f32 or bf16, not ", dtype_name(dtype));
  }
}

__device__ __forceinline__ float to_f32(float x) {
  return x;
}
__device__ __forceinline__ float to_f32(bf16 x) {
  return __bfloat162float(x);
}
template <typename T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ bf16 from_f32<bf16>(float x) {
  return __float2bfloat16_rn(x);
}

// ---- 16-byte vectors
// ------------------------------------------------------------------------------

// Loads/stores kVec consecutive elements at p as f32 (p 16-byte aligned when kVec > 1).
template <typename T, int kVec>
__device__ __forceinline__ void load_f32_vec(const T* p, float (&out)[kVec]) {
  if constexpr (kVec == 1) {
    out[0] = to_f32(*p);
  } else {
    static_assert(sizeof(T) * kVec == 16, "vectors are 16 bytes");
    const int4 raw = *reinterpret_cast<const int4*>(p);
    T vals[kVec];
    memcpy(vals, &raw, sizeof(raw));
#pragma unroll
    for (int j = 0; j < kVec; ++j) out[j] = to_f32(vals[j]);
  }
}
template <typename T, int kVec>
__device__ __forceinline__ void store_f32_vec(T* p, const float (&in)[kVec]) {
  if constexpr (kVec == 1) {
    *p = from_f32<T>(in[0]);
  } else {
    T vals[kVec];
#pragma unroll
    for (int j = 0; j < kVec; ++j) vals[j] = from_f32<T>(in[j]);
    int4 raw;
    memcpy(&raw, vals, sizeof(raw));
    *reinterpret_cast<int4*>(p) = raw;
  }
}

// ---- Launch shapes
// -------------------------------------------------------------------------------

constexpr int kThreads = 256;
// Blocks for a grid-stride loop over n elements: enough to fill the GPU, never more than needed.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks > 65535LL * 8) blocks = 65535LL * 8;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

// Blocks for a grid-stride loop over n rows (or groups) with one block per row: n, capped so the
// launch stays within the grid's limit (the kernels loop over the rest).
constexpr unsigned kMaxBlocks = 65535u * 16u;
inline unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>(n < 1 ? 1 : (n < kMaxBlocks ? n : kMaxBlocks));
}

// Calls launch(std::integral_constant<int, threads>{}) with the block size for one block per row
// of V logits: 512 threads from V = 8192 up, else 128 (a short row would leave threads idle).
template <typename Launch>
void with_vocab_threads(int64_t V, Launch&& launch) {
  if (V >= 8192) {
    launch(std::integral_constant<int, 512>{});
  } else {
    launch(std::integral_constant<int, 128>{});
  }
}

// ---- Reductions
// ----------------------------------------------------------------------------------

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `scratch` holds 32 floats of shared memory; the call contains __syncthreads().
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.0f;
  return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

}  // namespace rlaif::cuda
