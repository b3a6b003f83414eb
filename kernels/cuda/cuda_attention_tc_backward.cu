// Attention on tensor cores, backward, for bf16 with head size 64 or 128 (the forward is in
// cuda_attention_tc.cu): the scheme of cuda_attention.cu's backward on mma.sync m16n8k16 (Δ comes
// from its delta kernel).
//
//   attention_dkdv_tc_kernel: one block of 4 warps per (batch entry, kv head, tile of 64 keys);
//     each warp owns 16 keys and their dK, dV accumulators in registers. K and V stay in shared
//     memory; Q, dO, lse, Δ and the query segments of each (query head, query tile) step are
//     double-buffered with cp.async. The warp computes the transposed tiles Sᵀ = K Qᵀ and
//     dPᵀ = V dOᵀ, Pᵀ = exp2(scale·log2e·Sᵀ - lse·log2e) and dSᵀ = Pᵀ ⊙ (dPᵀ - Δ) in registers,
//     and feeds them as A fragments to dV += Pᵀ dO and dK += dSᵀ Q. One owner per dk/dv row:
//     no atomics, deterministic.
//   attention_dq_tc_kernel: one block of 4 warps per (batch entry, query head, tile of 64 query
//     rows); each warp owns 16 rows. Key tiles of 64 (K, V, segments) are double-buffered as in
//     the forward; S = Q Kᵀ and dP = dO Vᵀ give dS in registers, and dQ += dS K.
// Masks are applied only on tiles that cross the causal diagonal, with segments, or past Tq;
// rows whose lse is -inf (no allowed key) or past Tq get P = 0 through an lse of +inf.
#include <cmath>

#include "kernels/cuda/cuda_attention_tc.cuh"

namespace rlaif::cuda {
namespace {

using namespace attn;
using namespace attn_tc;

constexpr int kTile = 16 * kWarps;  // keys per dK/dV block, query rows per dQ block

// lse in base 2 for P = exp2(s·scale·log2e - lse2); +inf (so P = 0) for rows without keys.
__device__ __forceinline__ float lse_base2(float lse, bool valid) {
  return valid && lse != -INFINITY ? lse * kLog2e : INFINITY;
}

template <int D, int BM>
constexpr size_t dkdv_tc_smem_bytes() {
  constexpr int LD = D + 8;
  return sizeof(bf16) * (2 * kTile * LD + 4 * BM * LD) + sizeof(float) * 4 * BM +
         sizeof(int) * 2 * BM;
}

template <int D, int BM>
__global__ void __launch_bounds__(kTcThreads)
    attention_dkdv_tc_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k,
                             const bf16* __restrict__ v, const int32_t* __restrict__ seg,
                             const float* __restrict__ lse, const float* __restrict__ delta,
                             const bf16* __restrict__ dout, bf16* __restrict__ dk,
                             bf16* __restrict__ dv, AttnDims d, float scale, int n_ktiles) {
  constexpr int BN = kTile, LD = D + 8;
  constexpr int KD = D / 16;  // k steps over the head dimension
  constexpr int NQ = BM / 8;  // query n-tiles of Sᵀ
  constexpr int ND = D / 8;   // head-dim n-tiles of dK, dV
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* ks = reinterpret_cast<bf16*>(smem_raw);
  bf16* vs = ks + BN * LD;
  bf16* qs = vs + BN * LD;                                     // two buffers of [BM, LD]
  bf16* dos = qs + 2 * BM * LD;                                // two buffers of [BM, LD]
  float* lse_s = reinterpret_cast<float*>(dos + 2 * BM * LD);  // two buffers of [BM]
  float* delta_s = lse_s + 2 * BM;                             // two buffers of [BM]
  int* segq_s = reinterpret_cast<int*>(delta_s + 2 * BM);      // two buffers of [BM]

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gid = lane >> 2, tig = lane & 3;
  const int64_t block = blockIdx.x;
  const int tile = static_cast<int>(block % n_ktiles);  // low key tiles see the most queries
  const int64_t bg = block / n_ktiles;
  const int g = static_cast<int>(bg % d.hkv), b = static_cast<int>(bg / d.hkv);
  const int k0 = tile * BN;
  const int nk = max(0, min(BN, d.kv_len - k0));
  const bool has_seg = seg != nullptr;
  const int64_t q_ld = static_cast<int64_t>(d.hq) * d.dh, k_ld = static_cast<int64_t>(d.hkv) * d.dh;
  const float scale_log2 = scale * kLog2e;

  // Query tiles start at the first query whose position reaches the key tile.
  const int i_start = nk > 0 ? max(0, k0 + d.tq - d.kv_len) : d.tq;
  const int n_qt = (d.tq - i_start + BM - 1) / BM;
  const int n_iter = d.group * n_qt;

  // Keys of this thread: rows gid and gid + 8 of the warp's 16.
  int key[2], seg_k[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    key[half] = k0 + warp * 16 + 8 * half + gid;
    seg_k[half] =
        has_seg && key[half] < d.kv_len ? seg[static_cast<int64_t>(b) * d.tk + key[half]] : 0;
  }
  float acc_dk[ND][4], acc_dv[ND][4];
#pragma unroll
  for (int nd = 0; nd < ND; ++nd) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc_dk[nd][e] = acc_dv[nd][e] = 0.0f;
  }

  auto load_queries = [&](int it, int buf) {
    const int h = g * d.group + it / n_qt, i0 = i_start + (it % n_qt) * BM;
    const int rows = min(BM, d.tq - i0);
    cp_tile<BM, D, kTcThreads>(qs + buf * BM * LD, q + d.q_row(b, i0, h), q_ld, rows, q);
    cp_tile<BM, D, kTcThreads>(dos + buf * BM * LD, dout + d.q_row(b, i0, h), q_ld, rows, dout);
    if (tid < BM) {
      const int i = i0 + min(tid, rows - 1);
      const bool valid = tid < rows;
      cp_async4(lse_s + buf * BM + tid, lse + d.lse_at(b, h, i), valid);
      cp_async4(delta_s + buf * BM + tid, delta + d.lse_at(b, h, i), valid);
      if (has_seg) {
        const int p = d.pos(i);
        cp_async4(segq_s + buf * BM + tid, seg + static_cast<int64_t>(b) * d.tk + max(p, 0),
                  valid && p >= 0);
      }
    }
  };
  if (n_iter > 0) {
    cp_tile<BN, D, kTcThreads>(ks, k + d.k_row(b, k0, g), k_ld, nk, k);
    cp_tile<BN, D, kTcThreads>(vs, v + d.k_row(b, k0, g), k_ld, nk, v);
    load_queries(0, 0);
    cp_async_commit();
  }

  for (int it = 0; it < n_iter; ++it) {
    const int buf = it & 1;
    const int i0 = i_start + (it % n_qt) * BM;
    if (it + 1 < n_iter) {
      load_queries(it + 1, buf ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const bf16* qb = qs + buf * BM * LD;
    const bf16* dob = dos + buf * BM * LD;

    // Sᵀ = K Qᵀ and dPᵀ = V dOᵀ for the warp's 16 keys.
    float st[NQ][4], dpt[NQ][4];
#pragma unroll
    for (int nt = 0; nt < NQ; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) st[nt][e] = dpt[nt][e] = 0.0f;
    }
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) {
      uint32_t ka[4], va[4];
      ldmatrix_x4(ka, a_frag_addr<LD>(ks, warp * 16, kk * 16, lane));
      ldmatrix_x4(va, a_frag_addr<LD>(vs, warp * 16, kk * 16, lane));
#pragma unroll
      for (int np = 0; np < NQ / 2; ++np) {
        uint32_t bq[4], bo[4];
        ldmatrix_x4(bq, b_frag_addr<LD>(qb, np * 16, kk * 16, lane));
        ldmatrix_x4(bo, b_frag_addr<LD>(dob, np * 16, kk * 16, lane));
        mma_bf16(st[2 * np], ka, bq[0], bq[1]);
        mma_bf16(st[2 * np + 1], ka, bq[2], bq[3]);
        mma_bf16(dpt[2 * np], va, bo[0], bo[1]);
        mma_bf16(dpt[2 * np + 1], va, bo[2], bo[3]);
      }
    }

    // Pᵀ and dSᵀ in place. Element e of n-tile nt is key half e / 2, query column
    // 8·nt + 2·tig + e % 2.
    const bool need_mask = has_seg || i0 + BM > d.tq || d.pos(i0) < k0 + BN - 1;
#pragma unroll
    for (int nt = 0; nt < NQ; ++nt) {
#pragma unroll
      for (int cc = 0; cc < 2; ++cc) {
        const int col = nt * 8 + 2 * tig + cc, i = i0 + col;
        const float lse2 = lse_base2(lse_s[buf * BM + col], i < d.tq);
        const float dl = delta_s[buf * BM + col];
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int e = 2 * half + cc;
          float p = exp2_approx(st[nt][e] * scale_log2 - lse2);
          if (need_mask &&
              !(i < d.tq && allowed(key[half], d.pos(i), has_seg,
                                    has_seg ? segq_s[buf * BM + col] : 0, seg_k[half]))) {
            p = 0.0f;
          }
          st[nt][e] = p;
          dpt[nt][e] = p * (dpt[nt][e] - dl);
        }
      }
    }

    // dV += Pᵀ dO and dK += dSᵀ Q; two query n-tiles make one k step.
#pragma unroll
    for (int kq = 0; kq < BM / 16; ++kq) {
      uint32_t pa[4], dsa[4];
      pa[0] = pack_bf16(st[2 * kq][0], st[2 * kq][1]);
      pa[1] = pack_bf16(st[2 * kq][2], st[2 * kq][3]);
      pa[2] = pack_bf16(st[2 * kq + 1][0], st[2 * kq + 1][1]);
      pa[3] = pack_bf16(st[2 * kq + 1][2], st[2 * kq + 1][3]);
      dsa[0] = pack_bf16(dpt[2 * kq][0], dpt[2 * kq][1]);
      dsa[1] = pack_bf16(dpt[2 * kq][2], dpt[2 * kq][3]);
      dsa[2] = pack_bf16(dpt[2 * kq + 1][0], dpt[2 * kq + 1][1]);
      dsa[3] = pack_bf16(dpt[2 * kq + 1][2], dpt[2 * kq + 1][3]);
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t bo[4], bq[4];
        ldmatrix_x4_trans(bo, bt_frag_addr<LD>(dob, dp * 16, kq * 16, lane));
        ldmatrix_x4_trans(bq, bt_frag_addr<LD>(qb, dp * 16, kq * 16, lane));
        mma_bf16(acc_dv[2 * dp], pa, bo[0], bo[1]);
        mma_bf16(acc_dv[2 * dp + 1], pa, bo[2], bo[3]);
        mma_bf16(acc_dk[2 * dp], dsa, bq[0], bq[1]);
        mma_bf16(acc_dk[2 * dp + 1], dsa, bq[2], bq[3]);
      }
    }
    __syncthreads();  // the next iteration's copy overwrites this buffer
  }

  // Every key row below Tk is written; keys at or past kv_len hold exact zeros.
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    if (key[half] >= d.tk) continue;
    bf16* dk_row = dk + d.k_row(b, key[half], g);
    bf16* dv_row = dv + d.k_row(b, key[half], g);
#pragma unroll
    for (int nd = 0; nd < ND; ++nd) {
      const int col = nd * 8 + 2 * tig;
      *reinterpret_cast<__nv_bfloat162*>(dk_row + col) =
          __floats2bfloat162_rn(acc_dk[nd][2 * half] * scale, acc_dk[nd][2 * half + 1] * scale);
      *reinterpret_cast<__nv_bfloat162*>(dv_row + col) =
          __floats2bfloat162_rn(acc_dv[nd][2 * half], acc_dv[nd][2 * half + 1]);
    }
  }
}

template <int D>
constexpr size_t dq_tc_smem_bytes() {
  constexpr int LD = D + 8;
  return sizeof(bf16) * (2 * kTile * LD + 4 * kKeyTile * LD) + sizeof(int) * 2 * kKeyTile;
}

template <int D>
__global__ void __launch_bounds__(kTcThreads)
    attention_dq_tc_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k,
                           const bf16* __restrict__ v, const int32_t* __restrict__ seg,
                           const float* __restrict__ lse, const float* __restrict__ delta,
                           const bf16* __restrict__ dout, bf16* __restrict__ dq, AttnDims d,
                           float scale, int n_qtiles) {
  constexpr int BQ = kTile, BK = kKeyTile, LD = D + 8;
  constexpr int KD = D / 16, NK = BK / 8, ND = D / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* qs = reinterpret_cast<bf16*>(smem_raw);
  bf16* dos = qs + BQ * LD;
  bf16* ks = dos + BQ * LD;                              // two buffers of [BK, LD]
  bf16* vs = ks + 2 * BK * LD;                           // two buffers of [BK, LD]
  int* segk = reinterpret_cast<int*>(vs + 2 * BK * LD);  // two buffers of [BK]

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gid = lane >> 2, tig = lane & 3;
  const int64_t block = blockIdx.x;
  const int tile = n_qtiles - 1 - static_cast<int>(block % n_qtiles);  // heaviest first
  const int64_t bh = block / n_qtiles;
  const int h = static_cast<int>(bh % d.hq), b = static_cast<int>(bh / d.hq);
  const int g = h / d.group;
  const int i0 = tile * BQ;
  const int rows = min(BQ, d.tq - i0);
  const bool has_seg = seg != nullptr;
  const int64_t q_ld = static_cast<int64_t>(d.hq) * d.dh, k_ld = static_cast<int64_t>(d.hkv) * d.dh;
  const float scale_log2 = scale * kLog2e;
  const int p_last = d.pos(i0 + rows - 1);
  const int n_ktiles = p_last < 0 ? 0 : p_last / BK + 1;
  const int pos_first = d.pos(i0);

  int pos[2], seg_q[2];
  float lse2[2], dl[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int i = i0 + warp * 16 + 8 * half + gid;
    const bool valid = i < d.tq;
    pos[half] = valid ? d.pos(i) : -1;
    seg_q[half] = segment_of(seg, d, b, pos[half]);
    lse2[half] = lse_base2(valid ? lse[d.lse_at(b, h, i)] : 0.0f, valid);
    dl[half] = valid ? delta[d.lse_at(b, h, i)] : 0.0f;
  }
  float acc[ND][4];
#pragma unroll
  for (int nd = 0; nd < ND; ++nd) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[nd][e] = 0.0f;
  }

  auto load_keys = [&](int kt, int buf) {
    const int k0 = kt * BK, nk = min(BK, d.kv_len - k0);
    cp_tile<BK, D, kTcThreads>(ks + buf * BK * LD, k + d.k_row(b, k0, g), k_ld, nk, k);
    cp_tile<BK, D, kTcThreads>(vs + buf * BK * LD, v + d.k_row(b, k0, g), k_ld, nk, v);
    if (has_seg && tid < BK) {
      cp_async4(segk + buf * BK + tid, seg + static_cast<int64_t>(b) * d.tk + k0 + min(tid, nk - 1),
                tid < nk);
    }
  };
  if (n_ktiles > 0) {
    cp_tile<BQ, D, kTcThreads>(qs, q + d.q_row(b, i0, h), q_ld, rows, q);
    cp_tile<BQ, D, kTcThreads>(dos, dout + d.q_row(b, i0, h), q_ld, rows, dout);
    load_keys(0, 0);
    cp_async_commit();
  }

  for (int kt = 0; kt < n_ktiles; ++kt) {
    const int buf = kt & 1, k0 = kt * BK;
    if (kt + 1 < n_ktiles) {
      load_keys(kt + 1, buf ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const bf16* kb = ks + buf * BK * LD;
    const bf16* vb = vs + buf * BK * LD;

    // S = Q Kᵀ and dP = dO Vᵀ for the warp's 16 rows.
    float s[NK][4], dp[NK][4];
#pragma unroll
    for (int nt = 0; nt < NK; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[nt][e] = dp[nt][e] = 0.0f;
    }
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) {
      uint32_t qa[4], da[4];
      ldmatrix_x4(qa, a_frag_addr<LD>(qs, warp * 16, kk * 16, lane));
      ldmatrix_x4(da, a_frag_addr<LD>(dos, warp * 16, kk * 16, lane));
#pragma unroll
      for (int np = 0; np < NK / 2; ++np) {
        uint32_t bk[4], bv[4];
        ldmatrix_x4(bk, b_frag_addr<LD>(kb, np * 16, kk * 16, lane));
        ldmatrix_x4(bv, b_frag_addr<LD>(vb, np * 16, kk * 16, lane));
        mma_bf16(s[2 * np], qa, bk[0], bk[1]);
        mma_bf16(s[2 * np + 1], qa, bk[2], bk[3]);
        mma_bf16(dp[2 * np], da, bv[0], bv[1]);
        mma_bf16(dp[2 * np + 1], da, bv[2], bv[3]);
      }
    }

    // dS in place of S. Element e of n-tile nt is row half e / 2, key k0 + 8·nt + 2·tig + e % 2.
    const bool need_mask = has_seg || k0 + BK - 1 > pos_first;
#pragma unroll
    for (int nt = 0; nt < NK; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int half = e >> 1, col = nt * 8 + 2 * tig + (e & 1);
        float p = exp2_approx(s[nt][e] * scale_log2 - lse2[half]);
        if (need_mask && !allowed(k0 + col, pos[half], has_seg, seg_q[half],
                                  has_seg ? segk[buf * BK + col] : 0)) {
          p = 0.0f;
        }
        s[nt][e] = p * (dp[nt][e] - dl[half]);
      }
    }

    // dQ += dS K; two key n-tiles make one k step.
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      uint32_t dsa[4];
      dsa[0] = pack_bf16(s[2 * kk][0], s[2 * kk][1]);
      dsa[1] = pack_bf16(s[2 * kk][2], s[2 * kk][3]);
      dsa[2] = pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      dsa[3] = pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int dd = 0; dd < D / 16; ++dd) {
        uint32_t bk[4];
        ldmatrix_x4_trans(bk, bt_frag_addr<LD>(kb, dd * 16, kk * 16, lane));
        mma_bf16(acc[2 * dd], dsa, bk[0], bk[1]);
        mma_bf16(acc[2 * dd + 1], dsa, bk[2], bk[3]);
      }
    }
    __syncthreads();  // the next iteration's copy overwrites this buffer
  }

#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int i = i0 + warp * 16 + 8 * half + gid;
    if (i >= d.tq) continue;
    bf16* dq_row = dq + d.q_row(b, i, h);
#pragma unroll
    for (int nd = 0; nd < ND; ++nd) {
      *reinterpret_cast<__nv_bfloat162*>(dq_row + nd * 8 + 2 * tig) =
          __floats2bfloat162_rn(acc[nd][2 * half] * scale, acc[nd][2 * half + 1] * scale);
    }
  }
}

template <int D, int BM>
void launch_backward_tc(const AttnDims& d, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& segment_ids, float scale, const Tensor& lse,
                        const float* delta, const Tensor& dout, const Tensor& dq, const Tensor& dk,
                        const Tensor& dv) {
  const std::string detail = describe({{"q", &q},
                                       {"k", &k},
                                       {"v", &v},
                                       {"segment_ids", &segment_ids},
                                       {"lse", &lse},
                                       {"dout", &dout}});
  const int32_t* seg = segment_ids.defined() ? ptr<int32_t>(segment_ids) : nullptr;
  if (k.numel() > 0) {
    const int n_ktiles = (d.tk + kTile - 1) / kTile;
    const int64_t blocks = static_cast<int64_t>(n_ktiles) * d.hkv * d.batch;
    RLAIF_CHECK(blocks <= 0x7fffffff, "attention_backward: too many key tiles: ", detail);
    constexpr size_t smem = dkdv_tc_smem_bytes<D, BM>();
    auto kernel = attention_dkdv_tc_kernel<D, BM>;
    attn::allow_smem(kernel, smem, "attention_dkdv_tc_kernel");
    kernel<<<static_cast<unsigned>(blocks), kTcThreads, smem>>>(
        ptr<bf16>(q), ptr<bf16>(k), ptr<bf16>(v), seg, ptr<float>(lse), delta, ptr<bf16>(dout),
        ptr<bf16>(dk), ptr<bf16>(dv), d, scale, n_ktiles);
    check_launch("attention_dkdv_tc_kernel", detail);
  }
  if (q.numel() > 0) {
    const int n_qtiles = (d.tq + kTile - 1) / kTile;
    const int64_t blocks = static_cast<int64_t>(n_qtiles) * d.hq * d.batch;
    RLAIF_CHECK(blocks <= 0x7fffffff, "attention_backward: too many query tiles: ", detail);
    constexpr size_t smem = dq_tc_smem_bytes<D>();
    auto kernel = attention_dq_tc_kernel<D>;
    attn::allow_smem(kernel, smem, "attention_dq_tc_kernel");
    kernel<<<static_cast<unsigned>(blocks), kTcThreads, smem>>>(
        ptr<bf16>(q), ptr<bf16>(k), ptr<bf16>(v), seg, ptr<float>(lse), delta, ptr<bf16>(dout),
        ptr<bf16>(dq), d, scale, n_qtiles);
    check_launch("attention_dq_tc_kernel", detail);
  }
}

}  // namespace

bool attention_backward_tc(const AttnDims& d, const Tensor& q, const Tensor& k, const Tensor& v,
                           const Tensor& segment_ids, float scale, const Tensor& lse,
                           const float* delta, const Tensor& dout, const Tensor& dq,
                           const Tensor& dk, const Tensor& dv) {
  if (q.dtype() != DType::bf16 || (d.dh != 64 && d.dh != 128)) return false;
  if (!tc_aligned({&q, &k, &v, &dout, &dq, &dk, &dv})) return false;
  if (d.dh == 64) {
    launch_backward_tc<64, 64>(d, q, k, v, segment_ids, scale, lse, delta, dout, dq, dk, dv);
  } else {
    launch_backward_tc<128, 32>(d, q, k, v, segment_ids, scale, lse, delta, dout, dq, dk, dv);
  }
  return true;
}

}  // namespace rlaif::cuda
