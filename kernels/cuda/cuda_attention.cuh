// Shared pieces of the CUDA attention kernels: the validated sizes of a call, the masking rule,
// the entry points of the tensor-core path, and the scalar tile loops of the simple f32 path.
// Files: cuda_attention.cu (the simple path, which takes every case, and the CudaBackend
// methods, forward and backward), and the tensor-core kernels for bf16 with head size 64 or 128:
// cuda_attention_tc.cu (forward) and cuda_attention_tc_backward.cu.
//
// Simple path layout (every kernel): 256 threads, tiles of kBQ = 64 query rows by kBK = 64 keys,
// head dimension zero-padded to D ∈ {32, 64, 128} in shared memory (f32). Thread t has
// r = t / 16 and c = t % 16; in a [query row, key] tile it owns rows r + 16·ii (ii < 4) and keys
// c + 16·jj (jj < 4), and in a [row, head dim] tile rows r + 16·ii and columns c + 16·jj
// (jj < D/16). The 16 threads sharing r are 16 consecutive lanes of one warp, so row reductions
// over a tile are 4 xor-shuffles. Rows of shared tiles are padded to D + 1 floats so that the 16
// lanes reading 16 different rows at one column hit 16 different banks.
#pragma once

#include <cstdint>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {

// The sizes of one attention call, validated (see attention_dims). Element offsets are int64.
struct AttnDims {
  int batch, tq, tk, hq, hkv, dh;
  int group;   // query heads per kv head
  int kv_len;  // number of valid keys, in [0, tk]

  __host__ __device__ int64_t q_row(int b, int i, int h) const {
    return ((static_cast<int64_t>(b) * tq + i) * hq + h) * dh;
  }
  __host__ __device__ int64_t k_row(int b, int j, int g) const {
    return ((static_cast<int64_t>(b) * tk + j) * hkv + g) * dh;
  }
  __host__ __device__ int64_t lse_at(int b, int h, int i) const {
    return (static_cast<int64_t>(b) * hq + h) * tq + i;
  }
  // Key position of query i (negative: the query has no allowed key).
  __host__ __device__ int pos(int i) const { return kv_len - tq + i; }
};

// Checks the arguments common to attention and attention_backward as the CPU reference does
// (plus the GPU's limit Dh ≤ 128) and returns the sizes. Defined in cuda_attention.cu.
AttnDims attention_dims(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& segment_ids, int64_t kv_len, const Tensor& out,
                        const Tensor& lse);

// The CUDA kernels have no sliding window: refuses any call whose window would mask a key (the
// backend.h contract lets a port leave windows out this way). Defined in cuda_attention.cu.
void require_no_window(const char* op, int64_t window, const AttnDims& d);

// The tensor-core kernels (bf16, Dh 64 or 128, 16-byte aligned tensors): launch and return
// true, or return false (nothing launched) where they do not apply. delta: Δ laid out like lse.
bool attention_forward_tc(const AttnDims& d, const Tensor& q, const Tensor& k, const Tensor& v,
                          const Tensor& segment_ids, float scale, const Tensor& out,
                          const Tensor& lse);
bool attention_backward_tc(const AttnDims& d, const Tensor& q, const Tensor& k, const Tensor& v,
                           const Tensor& segment_ids, float scale, const Tensor& lse,
                           const float* delta, const Tensor& dout, const Tensor& dq,
                           const Tensor& dk, const Tensor& dv);

namespace attn {

constexpr int kAttnThreads = 256;  // threads of every attention block
constexpr int kBQ = 64;            // query rows per tile
constexpr int kBK = 64;            // keys per tile
constexpr int kPStride = 80;       // row stride of [query, key] tiles: rows r and r+1 of one warp
                                   // land 16 banks apart, so neither writes nor reads conflict
constexpr int kMaxHeadDim = 128;

// Shared-memory row stride of a [row, head dim] tile.
template <int D>
constexpr int stride() {
  return D + 1;
}

// The padded head dimension the simple kernels are instantiated for.
inline int padded_head_dim(int dh) {
  return dh <= 32 ? 32 : dh <= 64 ? 64 : 128;
}

// dst[row][dd] (row stride `ld`) = src[row·row_stride + dd] as f32 for row < valid_rows and
// dd < dh, else 0: zero padding makes dot products over the full D exact, and rows past the
// valid ones (keys at or past kv_len, query rows past Tq) are never read from global memory.
template <typename T, int D>
__device__ __forceinline__ void load_rows(float* dst, int ld, const T* __restrict__ src,
                                          int64_t row_stride, int valid_rows, int dh) {
  for (int idx = threadIdx.x; idx < kBQ * D; idx += kAttnThreads) {
    const int row = idx / D, dd = idx % D;
    float x = 0.0f;
    if (row < valid_rows && dd < dh) x = to_f32(src[row * row_stride + dd]);
    dst[row * ld + dd] = x;
  }
}

// acc[ii][jj] = Σ_dd a[r + 16ii][dd] · b[c + 16jj][dd] over two [64, D] tiles of stride D + 1.
template <int D>
__device__ __forceinline__ void tile_dot(const float* a, const float* b, int r, int c,
                                         float acc[4][4]) {
  constexpr int ld = stride<D>();
#pragma unroll
  for (int ii = 0; ii < 4; ++ii) {
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) acc[ii][jj] = 0.0f;
  }
#pragma unroll 4
  for (int dd = 0; dd < D; ++dd) {
    float av[4], bv[4];
#pragma unroll
    for (int ii = 0; ii < 4; ++ii) av[ii] = a[(r + 16 * ii) * ld + dd];
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) bv[jj] = b[(c + 16 * jj) * ld + dd];
#pragma unroll
    for (int ii = 0; ii < 4; ++ii) {
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) acc[ii][jj] = fmaf(av[ii], bv[jj], acc[ii][jj]);
    }
  }
}

// Reductions over the 16 lanes sharing r (an xor butterfly: every lane gets the same bits).
__device__ __forceinline__ float group16_max(float x) {
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ __forceinline__ float group16_sum(float x) {
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// Whether the query at key position `pos` (negative: none) with segment `seg_q` may attend key
// j whose segment is seg_k; has_seg false ignores segments. j ≤ pos < kv_len, so an allowed key
// is always a valid one.
__device__ __forceinline__ bool allowed(int j, int pos, bool has_seg, int seg_q, int seg_k) {
  return j <= pos && (!has_seg || seg_k == seg_q);
}

// The segment of key position pos in batch entry b (0 when pos < 0 or there are no segments).
__device__ __forceinline__ int segment_of(const int32_t* __restrict__ seg, const AttnDims& d, int b,
                                          int pos) {
  return (seg != nullptr && pos >= 0) ? seg[static_cast<int64_t>(b) * d.tk + pos] : 0;
}

// Makes kernel accept `bytes` of dynamic shared memory (above the default 48 KiB); set on every
// launch because the attribute is per device and cheap to set.
template <typename Kernel>
void allow_smem(Kernel kernel, size_t bytes, const char* name) {
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(bytes)),
             name, "setting its shared memory size");
}

}  // namespace attn
}  // namespace rlaif::cuda
