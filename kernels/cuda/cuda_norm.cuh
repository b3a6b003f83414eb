// Shared pieces of the LayerNorm / RMSNorm kernels: how a row is split over threads, the launch
// plan, and the argument checks, for the kernels of cuda_norm.cu (the forward, plain or fused with
// the residual add, and the backward).
//
// Rows are handled by "row groups": a warp per row when D ≤ 1024 (8 warps per block, reductions
// by shuffles only), else a block per row. A thread owns the vectors i = tid + k·G of its row
// (G the group size; 16-byte vectors when D and every pointer allow, else single elements). Rows
// whose vectors fit the registers (kSlots of them per thread) keep them there between passes;
// longer rows stream from memory on every pass (kSlots = 0).
#pragma once

#include <cstdint>
#include <initializer_list>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda::norm_rows {

constexpr int kMaxThreads = 512;  // launch bound: leaves up to 128 registers per thread
constexpr int kWarpBlock = 256;   // threads per block on the warp path (8 rows in flight)
constexpr int kWarpFloats = 32;   // floats a lane holds on the warp path: D ≤ 32·32
constexpr int kBlockSlots = 2;    // vectors a thread holds on the block path

// Elements of T in one 16-byte vector.
template <typename T>
constexpr int vec_width() {
  return static_cast<int>(16 / sizeof(T));
}

// Calls f(k, i) for the vectors i this thread owns: i = tid + k·G. With kSlots > 0 the loop is
// unrolled (k is a compile-time register slot; the host guarantees nvec ≤ G·kSlots); with
// kSlots == 0 it strides over any number of vectors (k is then 0 and meaningless). The mapping
// depends only on (tid, G, nvec), so every pass over a row visits a thread's own elements.
template <int kSlots, typename F>
__device__ __forceinline__ void for_owned(int tid, int group, int nvec, F&& f) {
  if constexpr (kSlots > 0) {
#pragma unroll
    for (int k = 0; k < kSlots; ++k) {
      const int i = tid + k * group;
      if (i < nvec) f(k, i);
    }
  } else {
    for (int i = tid; i < nvec; i += group) f(0, i);
  }
}

// Sum over the row group (a warp, or the block with `scratch` of 32 floats).
template <bool kWarp>
__device__ __forceinline__ float group_sum(float v, float* scratch) {
  if constexpr (kWarp) {
    return warp_sum(v);
  } else {
    return block_sum(v, scratch);
  }
}

// ---- Host side -------------------------------------------------------------------------------

inline bool aligned16(const Tensor& t) {
  return !t.defined() || reinterpret_cast<uintptr_t>(t.raw_data()) % 16 == 0;
}

inline int round_up32(int64_t v) {
  return static_cast<int>((v + 31) / 32 * 32);
}

// The launch configuration of a row kernel.
enum class Path { warp, block, stream };
struct Plan {
  bool vec;  // 16-byte vectors
  Path path;
  int threads;
};

// Depends on D, the dtype and the alignment of `tensors` only: a fused call whose tensors are all
// aligned gets the plan (and so the summation order) of the plain norm of its sum.
inline Plan plan_rows(int64_t d, DType dtype, std::initializer_list<const Tensor*> tensors) {
  const int64_t width = dtype == DType::bf16 ? 8 : 4;
  bool vec = d % width == 0;
  for (const Tensor* t : tensors) vec = vec && aligned16(*t);
  const int64_t unit = vec ? width : 1;
  const int64_t nvec = d / unit;
  if (d <= 32 * kWarpFloats) return {vec, Path::warp, kWarpBlock};
  if (nvec <= static_cast<int64_t>(kMaxThreads) * kBlockSlots) {
    const int64_t threads = round_up32((nvec + kBlockSlots - 1) / kBlockSlots);
    return {vec, Path::block, static_cast<int>(threads < 64 ? 64 : threads)};
  }
  return {vec, Path::stream, kMaxThreads};
}

inline unsigned row_blocks(int64_t groups, int per_block) {
  const int64_t blocks = (groups + per_block - 1) / per_block;
  return static_cast<unsigned>(blocks < (1 << 20) ? blocks : (1 << 20));
}

struct Shapes {
  int64_t n;
  int64_t d;
};

inline Shapes check_input(const char* op, const Tensor& x, const Tensor& gamma) {
  expect_float(op, "x", x);
  const int64_t d = last_dim(op, "x", x);
  RLAIF_CHECK(d > 0, op, ": x ", x, " has no features to normalise");
  RLAIF_CHECK(d <= (int64_t{1} << 30), op, ": x ", x, " has too many features for the cuda kernel");
  expect_float(op, "gamma", gamma);
  expect_same_dtype(op, "x", x, "gamma", gamma);
  expect_shape(op, "gamma", gamma, {d});
  return {rows(x), d};
}

// Optional [D] parameter or gradient of x's dtype.
inline void check_param(const char* op, const char* arg, const Tensor& t, const Tensor& x,
                        int64_t d) {
  if (!t.defined()) return;
  expect_float(op, arg, t);
  expect_same_dtype(op, "x", x, arg, t);
  expect_shape(op, arg, t, {d});
}

inline void check_like_x(const char* op, const char* arg, const Tensor& t, const Tensor& x) {
  expect_float(op, arg, t);
  expect_same_dtype(op, "x", x, arg, t);
  expect_shape(op, arg, t, x.shape());
}

// A per-row statistic (mean, rstd): f32, shaped [N] or as x without its last dimension.
inline void check_stat(const char* op, const char* arg, const Tensor& stat, const Tensor& x,
                       int64_t n) {
  expect_dtype(op, arg, stat, DType::f32);
  Shape leading(x.shape().begin(), x.shape().end() - 1);
  RLAIF_CHECK(stat.shape() == Shape{n} || stat.shape() == leading, op, ": ", arg, " is ", stat,
              " but must have shape ", shape_str({n}), " (one value per row of x ", x, ")");
}

}  // namespace rlaif::cuda::norm_rows
