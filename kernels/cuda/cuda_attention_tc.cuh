// Tensor-core building blocks of the bf16 attention kernels (cuda_attention_tc.cu, forward, and
// cuda_attention_tc_backward.cu): asynchronous tile copies (cp.async), fragment loads (ldmatrix)
// and the m16n8k16 bf16 MMA with f32 accumulation (mma.sync, sm_80+), as in FlashAttention-2.
//
// Fragment layouts (PTX ISA, "mma.m16n8k16"), with lane = 4·gid + tig:
//   A (16×16, row-major): a0 = (row gid, cols 2tig, 2tig+1), a1 = row gid+8, a2 = cols +8,
//     a3 = row gid+8 and cols +8.
//   B (16×8, k × n): b0 = (k 2tig, 2tig+1; n gid), b1 = k + 8.
//   C (16×8 f32): c0, c1 = (row gid, cols 2tig, 2tig+1), c2, c3 = row gid+8.
// The C fragments of two adjacent n-tiles are exactly the A fragment of one 16-wide k step, so
// probabilities computed in registers feed the next product without going through shared memory.
//
// Shared tiles are [rows, D] bf16 with rows padded to D + 8 elements: the 8 rows one ldmatrix
// phase reads start 16 bytes apart modulo 128, so they hit 8 disjoint groups of 4 banks.
#pragma once

#include <cstdint>

#include "kernels/cuda/cuda_attention.cuh"

namespace rlaif::cuda::attn_tc {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Every tensor-core attention kernel runs blocks of 4 warps; key tiles of 64 in the forward and
// the dQ kernel.
constexpr int kWarps = 4;
constexpr int kTcThreads = kWarps * 32;
constexpr int kKeyTile = 64;  // keys per step of the forward and of the dQ kernel

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global → shared, asynchronously; with valid false the destination is zero-filled and
// nothing is read (src must still be a valid address).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
// 4 bytes global → shared, zero-filled when !valid.
__device__ __forceinline__ void cp_async4(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
// Waits until at most N committed groups of this thread are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// c += a · b (16×16 by 16×8, bf16 inputs, f32 accumulators).
__device__ __forceinline__ void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as bf16x2 (round to nearest even), lo in the low half (the lower column).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// 2^x (ex2.approx: relative error about 2^-22, 2^-inf = 0).
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// ---- Fragment addresses: the shared-memory row this lane hands to ldmatrix ------------------

// A fragment (16×16) of a row-major [m, k] tile at (m0, k0).
template <int LD>
__device__ __forceinline__ const bf16* a_frag_addr(const bf16* tile, int m0, int k0, int lane) {
  return tile + (m0 + (lane & 15)) * LD + k0 + (lane >> 4) * 8;
}
// B fragments of two n-tiles (n0, n0 + 8) at k0 from a tile stored [n, k] (ldmatrix, no trans):
// registers 0, 1 are b0, b1 of the first n-tile, 2, 3 of the second.
template <int LD>
__device__ __forceinline__ const bf16* b_frag_addr(const bf16* tile, int n0, int k0, int lane) {
  return tile + (n0 + ((lane >> 4) << 3) + (lane & 7)) * LD + k0 + ((lane >> 3) & 1) * 8;
}
// The same from a tile stored [k, n] (ldmatrix .trans).
template <int LD>
__device__ __forceinline__ const bf16* bt_frag_addr(const bf16* tile, int n0, int k0, int lane) {
  return tile + (k0 + ((lane >> 3) & 1) * 8 + (lane & 7)) * LD + n0 + (lane >> 4) * 8;
}

// Starts copying rows [0, ROWS) of a [ROWS, D] bf16 tile (global row stride row_stride
// elements) into shared memory with row stride D + 8; rows at or past valid_rows are zero-filled
// and not read. `fallback` is any valid global address (used for rows not read).
template <int ROWS, int D, int NTHREADS>
__device__ __forceinline__ void cp_tile(bf16* dst, const bf16* src, int64_t row_stride,
                                        int valid_rows, const bf16* fallback) {
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  constexpr int kTotal = ROWS * kChunks;
#pragma unroll
  for (int it = 0; it < (kTotal + NTHREADS - 1) / NTHREADS; ++it) {
    const int idx = it * NTHREADS + static_cast<int>(threadIdx.x);
    if (kTotal % NTHREADS != 0 && idx >= kTotal) break;
    const int row = idx / kChunks, ch = idx % kChunks;
    const bool ok = row < valid_rows;
    cp_async16(dst + row * (D + 8) + ch * 8, ok ? src + row * row_stride + ch * 8 : fallback, ok);
  }
}

// Whether a bf16 call can take the tensor-core path: head size 64 or 128 exactly, and every
// tensor 16-byte aligned (cp.async copies 16-byte chunks; rows are 128 or 256 bytes).
inline bool tc_aligned(std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    if (t->defined() && reinterpret_cast<uintptr_t>(t->raw_data()) % 16 != 0) return false;
  }
  return true;
}

}  // namespace rlaif::cuda::attn_tc
