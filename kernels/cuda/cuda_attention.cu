// Attention on CUDA, forward and backward: the simple f32 path every case can take, and the
// argument checks. bf16 with Dh ∈ {64, 128} takes the tensor-core kernels of cuda_attention_tc.cu
// and cuda_attention_tc_backward.cu instead.
//
// Forward: a flash-attention kernel (Dao et al. 2022, with FlashAttention-2's
// loop order) that never materialises the [Tq, Tk] score matrix.
//
// One block per (batch entry, query head, tile of 64 query rows), heaviest tiles (the last
// rows, which see the most keys) scheduled first. The block keeps its Q tile in shared memory and
// loops over 64-key tiles of K and V, only up to the tile holding the last row's causal position:
// tiles entirely above the causal diagonal are skipped, and keys at or past kv_len are never
// read (p(i) < kv_len). Per key tile: S = Q Kᵀ (a 4×4 register micro-tile per thread), masking
// (causal, segments) and scale, then the online softmax: each row keeps its running maximum m and
// sum l, rescales its output accumulator by exp(m_old - m_new) and adds P V. At the end
// out = o / l and lse = m + log l; a row with no allowed key (l = 0) gets out = 0, lse = -inf.
//
// All arithmetic is f32 (inputs f32 or bf16 are converted while loading tiles), exp is expf;
// every reduction has a fixed order, so results are bitwise reproducible.
//
// Backward, flash-attention style (FlashAttention-2's scheme, without atomics):
// probabilities are recomputed from the saved lse, never stored, in three kernels:
//
//   attention_delta_kernel: Δ_i = Σ_d dout·out per query row, one warp per row, into a
//     [B, Hq, Tq] f32 scratch laid out like lse.
//   attention_dkdv_kernel: one block per (batch entry, kv head, tile of 64 keys). K and V of the
//     tile stay in shared memory; the block loops over the query heads of its group and over
//     64-row query tiles (only those whose causal positions reach the tile), recomputes
//     S = Q Kᵀ and dP = dO Vᵀ, P = exp(scale·S - lse), dS = P ⊙ (dP - Δ), and accumulates
//     dV += Pᵀ dO and dK += dSᵀ Q in registers. The block owns its dk/dv rows, so they need no
//     atomics; keys at or past kv_len are masked everywhere and get exactly 0.
//   attention_dq_kernel: one block per (batch entry, query head, tile of 64 query rows), looping
//     over key tiles up to its causal limit as the forward does, recomputing P and dS and
//     accumulating dQ = scale·dS K in registers.
//
// Recomputing S and dP in both kernels costs a second pass of matrix products but keeps every
// output owned by one block: results are bitwise reproducible. All arithmetic is f32.
// bf16 with Dh ∈ {64, 128} replaces the last two kernels by the tensor-core ones of
// cuda_attention_tc_backward.cu.
#include <cmath>

#include "kernels/cuda/cuda_attention.cuh"

namespace rlaif::cuda {

AttnDims attention_dims(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& segment_ids, int64_t kv_len, const Tensor& out,
                        const Tensor& lse) {
  expect_float(op, "q", q);
  RLAIF_CHECK(q.dim() == 4, op, ": q is ", q, " but must be [B, Tq, Hq, Dh]");
  expect_float(op, "k", k);
  RLAIF_CHECK(k.dim() == 4, op, ": k is ", k, " but must be [B, Tk, Hkv, Dh]");
  expect_same_dtype(op, "q", q, "k", k);
  expect_float(op, "v", v);
  expect_same_dtype(op, "k", k, "v", v);
  expect_shape(op, "v", v, k.shape());
  RLAIF_CHECK(k.size(0) == q.size(0) && k.size(3) == q.size(3), op, ": k ", k,
              " must match q's batch and head size (q is ", q, ")");
  RLAIF_CHECK(k.size(2) >= 1 && q.size(2) % k.size(2) == 0, op, ": q has ", q.size(2),
              " heads and k has ", k.size(2),
              ": the query heads must be a multiple of the kv heads (q ", q, ", k ", k, ")");
  RLAIF_CHECK(kv_len == -1 || (kv_len >= 0 && kv_len <= k.size(1)), op, ": kv_len = ", kv_len,
              " must be -1 (all keys) or in [0, Tk = ", k.size(1), "] (k is ", k, ")");
  if (segment_ids.defined()) {
    expect_dtype(op, "segment_ids", segment_ids, DType::i32);
    expect_shape(op, "segment_ids", segment_ids, {q.size(0), k.size(1)});
  }
  expect_float(op, "out", out);
  expect_same_dtype(op, "q", q, "out", out);
  expect_shape(op, "out", out, q.shape());
  expect_dtype(op, "lse", lse, DType::f32);
  expect_shape(op, "lse", lse, {q.size(0), q.size(2), q.size(1)});
  RLAIF_CHECK(q.size(3) <= attn::kMaxHeadDim, op, ": head size ", q.size(3),
              " exceeds the cuda backend's limit of ", attn::kMaxHeadDim, " (q is ", q, ")");
  constexpr int64_t kIntMax = 0x7fffffff;
  RLAIF_CHECK(q.size(0) <= kIntMax && q.size(1) <= kIntMax - attn::kBQ &&
                  k.size(1) <= kIntMax - attn::kBK && q.size(2) <= kIntMax,
              op, ": sizes exceed the cuda kernels' 32-bit indices: q ", q, ", k ", k);
  AttnDims d{};
  d.batch = static_cast<int>(q.size(0));
  d.tq = static_cast<int>(q.size(1));
  d.hq = static_cast<int>(q.size(2));
  d.dh = static_cast<int>(q.size(3));
  d.tk = static_cast<int>(k.size(1));
  d.hkv = static_cast<int>(k.size(2));
  d.group = d.hq / d.hkv;
  d.kv_len = static_cast<int>(kv_len == -1 ? k.size(1) : kv_len);
  return d;
}

void require_no_window(const char* op, int64_t window, const AttnDims& d) {
  RLAIF_CHECK(window >= 0, op, ": window = ", window, " must be 0 (none) or positive");
  RLAIF_CHECK(window == 0 || d.kv_len <= window, op, ": a sliding window of ", window,
              " keys would mask some of the ", d.kv_len,
              " keys, and the CUDA backend has no sliding-window kernel; use the CPU backend or "
              "sequences of at most ",
              window, " tokens");
}

namespace {

using namespace attn;

template <int D>
constexpr size_t forward_smem_bytes() {
  // Q and K tiles (padded rows), V tile, P tile, key segments.
  return sizeof(float) * (2 * kBQ * stride<D>() + kBK * D + kBQ * kPStride) + sizeof(int) * kBK;
}

template <typename T, int D>
__global__ void __launch_bounds__(kAttnThreads)
    attention_forward_kernel(const T* __restrict__ q, const T* __restrict__ k,
                             const T* __restrict__ v, const int32_t* __restrict__ seg,
                             T* __restrict__ out, float* __restrict__ lse, AttnDims d, float scale,
                             int n_qtiles) {
  constexpr int SD = stride<D>();
  constexpr int NJ = D / 16;  // head-dim columns per thread
  extern __shared__ float smem[];
  float* qs = smem;
  float* ks = qs + kBQ * SD;
  float* vs = ks + kBK * SD;
  float* ps = vs + kBK * D;
  int* segk = reinterpret_cast<int*>(ps + kBQ * kPStride);

  const int tid = threadIdx.x, r = tid >> 4, c = tid & 15;
  const int64_t block = blockIdx.x;
  const int tile = n_qtiles - 1 - static_cast<int>(block % n_qtiles);  // heaviest first
  const int64_t bh = block / n_qtiles;
  const int h = static_cast<int>(bh % d.hq), b = static_cast<int>(bh / d.hq);
  const int g = h / d.group;
  const int i0 = tile * kBQ;
  const int rows = min(kBQ, d.tq - i0);
  const bool has_seg = seg != nullptr;
  const int64_t q_ld = static_cast<int64_t>(d.hq) * d.dh, k_ld = static_cast<int64_t>(d.hkv) * d.dh;

  load_rows<T, D>(qs, SD, q + d.q_row(b, i0, h), q_ld, rows, d.dh);

  int pos[4], seg_q[4];
  float m[4], l[4], o[4][NJ];
#pragma unroll
  for (int ii = 0; ii < 4; ++ii) {
    const int i = i0 + r + 16 * ii;
    pos[ii] = i < d.tq ? d.pos(i) : -1;
    seg_q[ii] = segment_of(seg, d, b, pos[ii]);
    m[ii] = -INFINITY;
    l[ii] = 0.0f;
#pragma unroll
    for (int jj = 0; jj < NJ; ++jj) o[ii][jj] = 0.0f;
  }

  const int p_last = d.pos(i0 + rows - 1);
  const int n_ktiles = p_last < 0 ? 0 : p_last / kBK + 1;
  for (int kt = 0; kt < n_ktiles; ++kt) {
    const int k0 = kt * kBK;
    const int nk = min(kBK, d.kv_len - k0);  // ≥ 1: k0 ≤ p_last < kv_len
    __syncthreads();                         // the previous tile's P V is done with ks, vs and ps
    load_rows<T, D>(ks, SD, k + d.k_row(b, k0, g), k_ld, nk, d.dh);
    load_rows<T, D>(vs, D, v + d.k_row(b, k0, g), k_ld, nk, d.dh);
    if (has_seg && tid < kBK) {
      segk[tid] = tid < nk ? seg[static_cast<int64_t>(b) * d.tk + k0 + tid] : 0;
    }
    __syncthreads();

    float s[4][4];
    tile_dot<D>(qs, ks, r, c, s);
#pragma unroll
    for (int ii = 0; ii < 4; ++ii) {
      float row_max = -INFINITY;
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        const int col = c + 16 * jj;
        const bool ok = allowed(k0 + col, pos[ii], has_seg, seg_q[ii], has_seg ? segk[col] : 0);
        s[ii][jj] = ok ? s[ii][jj] * scale : -INFINITY;
        row_max = fmaxf(row_max, s[ii][jj]);
      }
      row_max = group16_max(row_max);
      const float m_new = fmaxf(m[ii], row_max);
      // A row with no allowed key so far keeps m = -inf; shifting by 0 then gives p = 0 and
      // alpha = 0 instead of NaN from (-inf) - (-inf).
      const float shift = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = expf(m[ii] - shift);
      float sum = 0.0f;
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        const float p = expf(s[ii][jj] - shift);
        ps[(r + 16 * ii) * kPStride + c + 16 * jj] = p;
        sum += p;
      }
      sum = group16_sum(sum);
      l[ii] = l[ii] * alpha + sum;
      m[ii] = m_new;
#pragma unroll
      for (int jj = 0; jj < NJ; ++jj) o[ii][jj] *= alpha;
    }
    __syncthreads();

#pragma unroll 4
    for (int kk = 0; kk < kBK; ++kk) {
      float pv[4], vv[NJ];
#pragma unroll
      for (int ii = 0; ii < 4; ++ii) pv[ii] = ps[(r + 16 * ii) * kPStride + kk];
#pragma unroll
      for (int jj = 0; jj < NJ; ++jj) vv[jj] = vs[kk * D + c + 16 * jj];
#pragma unroll
      for (int ii = 0; ii < 4; ++ii) {
#pragma unroll
        for (int jj = 0; jj < NJ; ++jj) o[ii][jj] = fmaf(pv[ii], vv[jj], o[ii][jj]);
      }
    }
  }

#pragma unroll
  for (int ii = 0; ii < 4; ++ii) {
    const int i = i0 + r + 16 * ii;
    if (i >= d.tq) continue;
    const bool any = l[ii] > 0.0f;
    const float inv = any ? 1.0f / l[ii] : 0.0f;
    T* o_row = out + d.q_row(b, i, h);
#pragma unroll
    for (int jj = 0; jj < NJ; ++jj) {
      const int dd = c + 16 * jj;
      if (dd < d.dh) o_row[dd] = from_f32<T>(o[ii][jj] * inv);
    }
    if (c == 0) lse[d.lse_at(b, h, i)] = any ? m[ii] + logf(l[ii]) : -INFINITY;
  }
}

template <typename T, int D>
void launch_forward(const AttnDims& d, const Tensor& q, const Tensor& k, const Tensor& v,
                    const Tensor& segment_ids, float scale, const Tensor& out, const Tensor& lse) {
  const int n_qtiles = (d.tq + kBQ - 1) / kBQ;
  const int64_t blocks = static_cast<int64_t>(n_qtiles) * d.hq * d.batch;
  RLAIF_CHECK(blocks <= 0x7fffffff, "attention: too many query tiles: q ", q, ", k ", k);
  constexpr size_t smem = forward_smem_bytes<D>();
  auto kernel = attention_forward_kernel<T, D>;
  allow_smem(kernel, smem, "attention_forward_kernel");
  kernel<<<static_cast<unsigned>(blocks), kAttnThreads, smem>>>(
      ptr<T>(q), ptr<T>(k), ptr<T>(v), segment_ids.defined() ? ptr<int32_t>(segment_ids) : nullptr,
      ptr<T>(out), ptr<float>(lse), d, scale, n_qtiles);
  check_launch("attention_forward_kernel", describe({{"q", &q},
                                                     {"k", &k},
                                                     {"v", &v},
                                                     {"segment_ids", &segment_ids},
                                                     {"out", &out},
                                                     {"lse", &lse}}));
}

}  // namespace

void CudaBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v,
                            const Tensor& segment_ids, int64_t kv_len, int64_t window, float scale,
                            const Tensor& out, const Tensor& lse) {
  const char* op = "attention";
  const AttnDims d = attention_dims(op, q, k, v, segment_ids, kv_len, out, lse);
  require_no_window(op, window, d);
  if (static_cast<int64_t>(d.batch) * d.hq * d.tq == 0) return;  // no rows: nothing to write
  if (attention_forward_tc(d, q, k, v, segment_ids, scale, out, lse)) return;
  dispatch_float(q.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    switch (padded_head_dim(d.dh)) {
      case 32:
        launch_forward<T, 32>(d, q, k, v, segment_ids, scale, out, lse);
        break;
      case 64:
        launch_forward<T, 64>(d, q, k, v, segment_ids, scale, out, lse);
        break;
      default:
        launch_forward<T, 128>(d, q, k, v, segment_ids, scale, out, lse);
        break;
    }
  });
}

namespace {

using namespace attn;

// Δ[b, h, i] = Σ_d dout[b, i, h, d] · out[b, i, h, d]; one warp per (b, i, h) row.
template <typename T>
__global__ void attention_delta_kernel(const T* __restrict__ dout, const T* __restrict__ out,
                                       float* __restrict__ delta, AttnDims d) {
  const int64_t n_rows = static_cast<int64_t>(d.batch) * d.tq * d.hq;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= n_rows) return;
  const int lane = threadIdx.x & 31;
  const int h = static_cast<int>(row % d.hq);
  const int64_t bi = row / d.hq;
  const int i = static_cast<int>(bi % d.tq), b = static_cast<int>(bi / d.tq);
  const int64_t base = row * d.dh;
  float acc = 0.0f;
  for (int dd = lane; dd < d.dh; dd += 32) {
    acc = fmaf(to_f32(dout[base + dd]), to_f32(out[base + dd]), acc);
  }
  acc = warp_sum(acc);
  if (lane == 0) delta[d.lse_at(b, h, i)] = acc;
}

// P and dS of one [64 query rows, 64 keys] tile, from S = Q Kᵀ and dP = dO Vᵀ: written to
// ps / dss (either may be null) at [row r + 16ii][key c + 16jj]. Masked entries, and rows whose
// lse is -inf (no allowed key), get exactly 0.
__device__ __forceinline__ void probabilities_and_ds(const float s[4][4], const float dp[4][4],
                                                     const int pos[4], const int seg_q[4],
                                                     const float row_lse[4],
                                                     const float row_delta[4], const int* segk,
                                                     bool has_seg, int k0, int r, int c,
                                                     float scale, float* ps, float* dss) {
#pragma unroll
  for (int ii = 0; ii < 4; ++ii) {
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) {
      const int col = c + 16 * jj;
      const bool ok = allowed(k0 + col, pos[ii], has_seg, seg_q[ii], has_seg ? segk[col] : 0) &&
                      row_lse[ii] != -INFINITY;
      const float p = ok ? expf(s[ii][jj] * scale - row_lse[ii]) : 0.0f;
      const int at = (r + 16 * ii) * kPStride + col;
      if (ps != nullptr) ps[at] = p;
      dss[at] = p * (dp[ii][jj] - row_delta[ii]);
    }
  }
}

template <int D>
constexpr size_t dkdv_smem_bytes() {
  // K, V, Q, dO tiles (padded rows), P and dS tiles, key segments, per-row lse, Δ, segment.
  return sizeof(float) * (4 * kBQ * stride<D>() + 2 * kBQ * kPStride + 2 * kBQ) +
         sizeof(int) * (kBK + kBQ);
}

template <typename T, int D>
__global__ void __launch_bounds__(kAttnThreads)
    attention_dkdv_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                          const int32_t* __restrict__ seg, const float* __restrict__ lse,
                          const float* __restrict__ delta, const T* __restrict__ dout,
                          T* __restrict__ dk, T* __restrict__ dv, AttnDims d, float scale,
                          int n_ktiles) {
  constexpr int SD = stride<D>();
  constexpr int NJ = D / 16;
  extern __shared__ float smem[];
  float* ks = smem;
  float* vs = ks + kBK * SD;
  float* qs = vs + kBK * SD;
  float* dos = qs + kBQ * SD;
  float* ps = dos + kBQ * SD;
  float* dss = ps + kBQ * kPStride;
  float* lse_s = dss + kBQ * kPStride;
  float* delta_s = lse_s + kBQ;
  int* segk = reinterpret_cast<int*>(delta_s + kBQ);
  int* segq_s = segk + kBK;

  const int tid = threadIdx.x, r = tid >> 4, c = tid & 15;
  const int64_t block = blockIdx.x;
  const int tile = static_cast<int>(block % n_ktiles);
  const int64_t bg = block / n_ktiles;
  const int g = static_cast<int>(bg % d.hkv), b = static_cast<int>(bg / d.hkv);
  const int k0 = tile * kBK;
  const int nk = max(0, min(kBK, d.kv_len - k0));  // valid keys of the tile
  const bool has_seg = seg != nullptr;
  const int64_t q_ld = static_cast<int64_t>(d.hq) * d.dh, k_ld = static_cast<int64_t>(d.hkv) * d.dh;

  load_rows<T, D>(ks, SD, k + d.k_row(b, k0, g), k_ld, nk, d.dh);
  load_rows<T, D>(vs, SD, v + d.k_row(b, k0, g), k_ld, nk, d.dh);
  if (has_seg && tid < kBK) {
    segk[tid] = tid < nk ? seg[static_cast<int64_t>(b) * d.tk + k0 + tid] : 0;
  }

  float acc_dk[4][NJ], acc_dv[4][NJ];
#pragma unroll
  for (int ii = 0; ii < 4; ++ii) {
#pragma unroll
    for (int jj = 0; jj < NJ; ++jj) acc_dk[ii][jj] = acc_dv[ii][jj] = 0.0f;
  }

  // Queries whose position reaches the tile: pos(i) ≥ k0. None when the tile holds no valid key.
  const int i_start = nk > 0 ? max(0, k0 + d.tq - d.kv_len) : d.tq;
  for (int hi = 0; hi < d.group; ++hi) {
    const int h = g * d.group + hi;
    for (int i0 = i_start; i0 < d.tq; i0 += kBQ) {
      const int rows = min(kBQ, d.tq - i0);
      __syncthreads();  // the previous query tile is done with qs, dos, ps, dss and the rows
      load_rows<T, D>(qs, SD, q + d.q_row(b, i0, h), q_ld, rows, d.dh);
      load_rows<T, D>(dos, SD, dout + d.q_row(b, i0, h), q_ld, rows, d.dh);
      if (tid < kBQ) {
        const int i = i0 + tid;
        const bool valid = tid < rows;
        lse_s[tid] = valid ? lse[d.lse_at(b, h, i)] : -INFINITY;
        delta_s[tid] = valid ? delta[d.lse_at(b, h, i)] : 0.0f;
        segq_s[tid] = valid ? segment_of(seg, d, b, d.pos(i)) : 0;
      }
      __syncthreads();

      int pos[4], seg_q[4];
      float row_lse[4], row_delta[4];
#pragma unroll
      for (int ii = 0; ii < 4; ++ii) {
        const int row = r + 16 * ii;
        pos[ii] = row < rows ? d.pos(i0 + row) : -1;
        seg_q[ii] = segq_s[row];
        row_lse[ii] = lse_s[row];
        row_delta[ii] = delta_s[row];
      }
      float s[4][4], dp[4][4];
      tile_dot<D>(qs, ks, r, c, s);
      tile_dot<D>(dos, vs, r, c, dp);
      probabilities_and_ds(s, dp, pos, seg_q, row_lse, row_delta, segk, has_seg, k0, r, c, scale,
                           ps, dss);
      __syncthreads();

      // dV[key] += Σ_rows P[row][key] dO[row];  dK[key] += Σ_rows dS[row][key] Q[row].
#pragma unroll 2
      for (int row = 0; row < kBQ; ++row) {
        float pk[4], dsk[4], qv[NJ], dov[NJ];
#pragma unroll
        for (int ii = 0; ii < 4; ++ii) {
          pk[ii] = ps[row * kPStride + r + 16 * ii];
          dsk[ii] = dss[row * kPStride + r + 16 * ii];
        }
#pragma unroll
        for (int jj = 0; jj < NJ; ++jj) {
          qv[jj] = qs[row * SD + c + 16 * jj];
          dov[jj] = dos[row * SD + c + 16 * jj];
        }
#pragma unroll
        for (int ii = 0; ii < 4; ++ii) {
#pragma unroll
          for (int jj = 0; jj < NJ; ++jj) {
            acc_dv[ii][jj] = fmaf(pk[ii], dov[jj], acc_dv[ii][jj]);
            acc_dk[ii][jj] = fmaf(dsk[ii], qv[jj], acc_dk[ii][jj]);
          }
        }
      }
    }
  }

  // Every key row of the tile below Tk is written: keys at or past kv_len hold exact zeros.
#pragma unroll
  for (int ii = 0; ii < 4; ++ii) {
    const int j = k0 + r + 16 * ii;
    if (j >= d.tk) continue;
    T* dk_row = dk + d.k_row(b, j, g);
    T* dv_row = dv + d.k_row(b, j, g);
#pragma unroll
    for (int jj = 0; jj < NJ; ++jj) {
      const int dd = c + 16 * jj;
      if (dd < d.dh) {
        dk_row[dd] = from_f32<T>(acc_dk[ii][jj] * scale);
        dv_row[dd] = from_f32<T>(acc_dv[ii][jj]);
      }
    }
  }
}

template <int D>
constexpr size_t dq_smem_bytes() {
  // Q, dO, K, V tiles (padded rows), dS tile, key segments.
  return sizeof(float) * (4 * kBQ * stride<D>() + kBQ * kPStride) + sizeof(int) * kBK;
}

template <typename T, int D>
__global__ void __launch_bounds__(kAttnThreads)
    attention_dq_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                        const int32_t* __restrict__ seg, const float* __restrict__ lse,
                        const float* __restrict__ delta, const T* __restrict__ dout,
                        T* __restrict__ dq, AttnDims d, float scale, int n_qtiles) {
  constexpr int SD = stride<D>();
  constexpr int NJ = D / 16;
  extern __shared__ float smem[];
  float* qs = smem;
  float* dos = qs + kBQ * SD;
  float* ks = dos + kBQ * SD;
  float* vs = ks + kBK * SD;
  float* dss = vs + kBK * SD;
  int* segk = reinterpret_cast<int*>(dss + kBQ * kPStride);

  const int tid = threadIdx.x, r = tid >> 4, c = tid & 15;
  const int64_t block = blockIdx.x;
  const int tile = n_qtiles - 1 - static_cast<int>(block % n_qtiles);  // heaviest first
  const int64_t bh = block / n_qtiles;
  const int h = static_cast<int>(bh % d.hq), b = static_cast<int>(bh / d.hq);
  const int g = h / d.group;
  const int i0 = tile * kBQ;
  const int rows = min(kBQ, d.tq - i0);
  const bool has_seg = seg != nullptr;
  const int64_t q_ld = static_cast<int64_t>(d.hq) * d.dh, k_ld = static_cast<int64_t>(d.hkv) * d.dh;

  load_rows<T, D>(qs, SD, q + d.q_row(b, i0, h), q_ld, rows, d.dh);
  load_rows<T, D>(dos, SD, dout + d.q_row(b, i0, h), q_ld, rows, d.dh);

  int pos[4], seg_q[4];
  float row_lse[4], row_delta[4], acc[4][NJ];
#pragma unroll
  for (int ii = 0; ii < 4; ++ii) {
    const int i = i0 + r + 16 * ii;
    const bool valid = i < d.tq;
    pos[ii] = valid ? d.pos(i) : -1;
    seg_q[ii] = segment_of(seg, d, b, pos[ii]);
    row_lse[ii] = valid ? lse[d.lse_at(b, h, i)] : -INFINITY;
    row_delta[ii] = valid ? delta[d.lse_at(b, h, i)] : 0.0f;
#pragma unroll
    for (int jj = 0; jj < NJ; ++jj) acc[ii][jj] = 0.0f;
  }

  const int p_last = d.pos(i0 + rows - 1);
  const int n_ktiles = p_last < 0 ? 0 : p_last / kBK + 1;
  for (int kt = 0; kt < n_ktiles; ++kt) {
    const int k0 = kt * kBK;
    const int nk = min(kBK, d.kv_len - k0);  // ≥ 1: k0 ≤ p_last < kv_len
    __syncthreads();                         // the previous tile's dS K is done with ks and dss
    load_rows<T, D>(ks, SD, k + d.k_row(b, k0, g), k_ld, nk, d.dh);
    load_rows<T, D>(vs, SD, v + d.k_row(b, k0, g), k_ld, nk, d.dh);
    if (has_seg && tid < kBK) {
      segk[tid] = tid < nk ? seg[static_cast<int64_t>(b) * d.tk + k0 + tid] : 0;
    }
    __syncthreads();

    float s[4][4], dp[4][4];
    tile_dot<D>(qs, ks, r, c, s);
    tile_dot<D>(dos, vs, r, c, dp);
    probabilities_and_ds(s, dp, pos, seg_q, row_lse, row_delta, segk, has_seg, k0, r, c, scale,
                         nullptr, dss);
    __syncthreads();

#pragma unroll 4
    for (int kk = 0; kk < kBK; ++kk) {
      float dsv[4], kv[NJ];
#pragma unroll
      for (int ii = 0; ii < 4; ++ii) dsv[ii] = dss[(r + 16 * ii) * kPStride + kk];
#pragma unroll
      for (int jj = 0; jj < NJ; ++jj) kv[jj] = ks[kk * SD + c + 16 * jj];
#pragma unroll
      for (int ii = 0; ii < 4; ++ii) {
#pragma unroll
        for (int jj = 0; jj < NJ; ++jj) acc[ii][jj] = fmaf(dsv[ii], kv[jj], acc[ii][jj]);
      }
    }
  }

#pragma unroll
  for (int ii = 0; ii < 4; ++ii) {
    const int i = i0 + r + 16 * ii;
    if (i >= d.tq) continue;
    T* dq_row = dq + d.q_row(b, i, h);
#pragma unroll
    for (int jj = 0; jj < NJ; ++jj) {
      const int dd = c + 16 * jj;
      if (dd < d.dh) dq_row[dd] = from_f32<T>(acc[ii][jj] * scale);
    }
  }
}

struct BackwardArgs {
  const Tensor &q, &k, &v, &segment_ids, &out, &lse, &dout, &dq, &dk, &dv;
};

template <typename T, int D>
void launch_backward(const AttnDims& d, const BackwardArgs& a, float scale, const float* delta) {
  const std::string detail = describe({{"q", &a.q},
                                       {"k", &a.k},
                                       {"v", &a.v},
                                       {"segment_ids", &a.segment_ids},
                                       {"lse", &a.lse},
                                       {"dout", &a.dout}});
  const int32_t* seg = a.segment_ids.defined() ? ptr<int32_t>(a.segment_ids) : nullptr;
  if (a.k.numel() > 0) {
    const int n_ktiles = (d.tk + kBK - 1) / kBK;
    const int64_t blocks = static_cast<int64_t>(n_ktiles) * d.hkv * d.batch;
    RLAIF_CHECK(blocks <= 0x7fffffff, "attention_backward: too many key tiles: ", detail);
    constexpr size_t smem = dkdv_smem_bytes<D>();
    auto kernel = attention_dkdv_kernel<T, D>;
    allow_smem(kernel, smem, "attention_dkdv_kernel");
    kernel<<<static_cast<unsigned>(blocks), kAttnThreads, smem>>>(
        ptr<T>(a.q), ptr<T>(a.k), ptr<T>(a.v), seg, ptr<float>(a.lse), delta, ptr<T>(a.dout),
        ptr<T>(a.dk), ptr<T>(a.dv), d, scale, n_ktiles);
    check_launch("attention_dkdv_kernel", detail);
  }
  if (a.q.numel() > 0) {
    const int n_qtiles = (d.tq + kBQ - 1) / kBQ;
    const int64_t blocks = static_cast<int64_t>(n_qtiles) * d.hq * d.batch;
    RLAIF_CHECK(blocks <= 0x7fffffff, "attention_backward: too many query tiles: ", detail);
    constexpr size_t smem = dq_smem_bytes<D>();
    auto kernel = attention_dq_kernel<T, D>;
    allow_smem(kernel, smem, "attention_dq_kernel");
    kernel<<<static_cast<unsigned>(blocks), kAttnThreads, smem>>>(
        ptr<T>(a.q), ptr<T>(a.k), ptr<T>(a.v), seg, ptr<float>(a.lse), delta, ptr<T>(a.dout),
        ptr<T>(a.dq), d, scale, n_qtiles);
    check_launch("attention_dq_kernel", detail);
  }
}

}  // namespace

void CudaBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& segment_ids, int64_t kv_len, int64_t window,
                                     float scale, const Tensor& out, const Tensor& lse,
                                     const Tensor& dout, const Tensor& dq, const Tensor& dk,
                                     const Tensor& dv) {
  const char* op = "attention_backward";
  const AttnDims d = attention_dims(op, q, k, v, segment_ids, kv_len, out, lse);
  require_no_window(op, window, d);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"dout", &dout}, {"dq", &dq}}) {
    expect_float(op, name, *t);
    expect_same_dtype(op, "q", q, name, *t);
    expect_shape(op, name, *t, q.shape());
  }
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"dk", &dk}, {"dv", &dv}}) {
    expect_float(op, name, *t);
    expect_same_dtype(op, "k", k, name, *t);
    expect_shape(op, name, *t, k.shape());
  }

  // Δ per query row, laid out like lse. Empty when there are no query rows.
  const int64_t n_rows = static_cast<int64_t>(d.batch) * d.tq * d.hq;
  Tensor delta = Tensor::empty({d.batch, d.hq, d.tq}, DType::f32, q.device());
  dispatch_float(q.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (n_rows > 0) {
      constexpr int kRowsPerBlock = kAttnThreads / 32;
      attention_delta_kernel<T>
          <<<static_cast<unsigned>((n_rows + kRowsPerBlock - 1) / kRowsPerBlock), kAttnThreads>>>(
              ptr<T>(dout), ptr<T>(out), ptr<float>(delta), d);
      check_launch("attention_delta_kernel", describe({{"out", &out}, {"dout", &dout}}));
    }
    const float* delta_p = n_rows > 0 ? ptr<float>(delta) : nullptr;
    if (attention_backward_tc(d, q, k, v, segment_ids, scale, lse, delta_p, dout, dq, dk, dv)) {
      return;
    }
    const BackwardArgs args{q, k, v, segment_ids, out, lse, dout, dq, dk, dv};
    switch (padded_head_dim(d.dh)) {
      case 32:
        launch_backward<T, 32>(d, args, scale, delta_p);
        break;
      case 64:
        launch_backward<T, 64>(d, args, scale, delta_p);
        break;
      default:
        launch_backward<T, 128>(d, args, scale, delta_p);
        break;
    }
  });
}

}  // namespace rlaif::cuda
