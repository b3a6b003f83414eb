// Attention on tensor cores, forward and backward, for bf16 with head size 64 or 128. Every other
// case takes the simple f32 path of cuda_attention.cu.
//
// Forward (FlashAttention-2's forward: Dao 2023): one block of 4 warps per (batch entry, query
// head, tile of BQ query rows), heaviest tiles first; each warp owns MT·16 query rows (MT = 2 for
// Dh 64, 1 for Dh 128, to fit registers), and keeps their Q fragments, the output accumulator and
// the softmax statistics in registers. Key tiles of 64 are double-buffered in shared memory with
// cp.async (the copy of tile t+1 overlaps the products of tile t), and only tiles up to the block's
// last causal position are visited, so keys at or past kv_len are never read (the partial last tile
// is zero-filled). Per key tile: S = Q Kᵀ on mma.sync m16n8k16 (f32 accumulators); masking (causal,
// segments) only on tiles that cross the diagonal or when segments are given; the online softmax in
// base 2 (scores pre-multiplied by scale·log2 e, exp2 by ex2.approx); P is rounded to bf16 and
// multiplied by V straight from the registers that hold it. Row sums stay per thread and are
// reduced across the 4 lanes of a row once at the end, in a fixed order: deterministic.
// out = o / l, lse = (m + log2 l)·ln 2; rows with no allowed key get out = 0, lse = -inf.
//
// Backward: the scheme of cuda_attention.cu's backward on mma.sync m16n8k16 (Δ comes from its
// delta kernel).
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

constexpr int kWarps = 4;
constexpr int kTcThreads = kWarps * 32;
constexpr int kKeyTile = 64;  // keys per step of the forward and of the dQ kernel

template <int D, int MT>
constexpr size_t forward_tc_smem_bytes() {
  constexpr int BQ = 16 * MT * kWarps, LD = D + 8;
  return sizeof(bf16) * (BQ * LD + 4 * kKeyTile * LD) + sizeof(int) * 2 * kKeyTile;
}

template <int D, int MT>
__global__ void __launch_bounds__(kTcThreads)
    attention_forward_tc_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k,
                                const bf16* __restrict__ v, const int32_t* __restrict__ seg,
                                bf16* __restrict__ out, float* __restrict__ lse, AttnDims d,
                                float scale, int n_qtiles) {
  constexpr int BQ = 16 * MT * kWarps, BK = kKeyTile, LD = D + 8;
  constexpr int KD = D / 16;  // k steps over the head dimension
  constexpr int NK = BK / 8;  // key n-tiles of S
  constexpr int ND = D / 8;   // head-dim n-tiles of O
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* qs = reinterpret_cast<bf16*>(smem_raw);
  bf16* ks = qs + BQ * LD;                               // two buffers of [BK, LD]
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
  const int pos_first = d.pos(i0);  // the block's smallest position: tiles past it need masks

  // Rows of this thread: index 2·mt + half is row warp·16·MT + 16·mt + 8·half + gid.
  int pos[2 * MT], seg_q[2 * MT];
  float m[2 * MT], l[2 * MT];
#pragma unroll
  for (int x = 0; x < 2 * MT; ++x) {
    const int i = i0 + warp * 16 * MT + 16 * (x >> 1) + 8 * (x & 1) + gid;
    pos[x] = i < d.tq ? d.pos(i) : -1;
    seg_q[x] = segment_of(seg, d, b, pos[x]);
    m[x] = -INFINITY;
    l[x] = 0.0f;
  }
  float o[MT][ND][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int nd = 0; nd < ND; ++nd) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][nd][e] = 0.0f;
    }
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
    load_keys(0, 0);
    cp_async_commit();
  }

  uint32_t qf[MT][KD][4];
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
    if (kt == 0) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int kk = 0; kk < KD; ++kk) {
          ldmatrix_x4(qf[mt][kk], a_frag_addr<LD>(qs, (warp * MT + mt) * 16, kk * 16, lane));
        }
      }
    }
    const bf16* kb = ks + buf * BK * LD;
    const bf16* vb = vs + buf * BK * LD;

    // S = Q Kᵀ.
    float s[MT][NK][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int nt = 0; nt < NK; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.0f;
      }
    }
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) {
#pragma unroll
      for (int np = 0; np < NK / 2; ++np) {
        uint32_t bf[4];
        ldmatrix_x4(bf, b_frag_addr<LD>(kb, np * 16, kk * 16, lane));
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma_bf16(s[mt][2 * np], qf[mt][kk], bf[0], bf[1]);
          mma_bf16(s[mt][2 * np + 1], qf[mt][kk], bf[2], bf[3]);
        }
      }
    }

    // Masking, scaling and the online softmax. Element e of n-tile nt is row half e / 2 and key
    // k0 + 8·nt + 2·tig + e % 2.
    const bool need_mask = has_seg || k0 + BK - 1 > pos_first;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      float row_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int nt = 0; nt < NK; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float x = s[mt][nt][e] * scale_log2;
          if (need_mask) {
            const int col = nt * 8 + 2 * tig + (e & 1), x_row = 2 * mt + (e >> 1);
            if (!allowed(k0 + col, pos[x_row], has_seg, seg_q[x_row],
                         has_seg ? segk[buf * BK + col] : 0)) {
              x = -INFINITY;
            }
          }
          s[mt][nt][e] = x;
          row_max[e >> 1] = fmaxf(row_max[e >> 1], x);
        }
      }
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int x_row = 2 * mt + half;
        float mx = row_max[half];
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m[x_row], mx);
        // No allowed key yet: shift by 0 so that p = 0 and alpha = 0 rather than NaN.
        const float shift = m_new == -INFINITY ? 0.0f : m_new;
        const float alpha = exp2_approx(m[x_row] - shift);
        m[x_row] = m_new;
        float sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < NK; ++nt) {
#pragma unroll
          for (int e = 2 * half; e < 2 * half + 2; ++e) {
            const float p = exp2_approx(s[mt][nt][e] - shift);
            s[mt][nt][e] = p;
            sum += p;
          }
        }
        l[x_row] = l[x_row] * alpha + sum;
#pragma unroll
        for (int nd = 0; nd < ND; ++nd) {
          o[mt][nd][2 * half] *= alpha;
          o[mt][nd][2 * half + 1] *= alpha;
        }
      }
    }

    // O += P V, P from the registers of S (two key n-tiles make one k step).
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      uint32_t pa[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        pa[mt][0] = pack_bf16(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        pa[mt][1] = pack_bf16(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        pa[mt][2] = pack_bf16(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        pa[mt][3] = pack_bf16(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t bf[4];
        ldmatrix_x4_trans(bf, bt_frag_addr<LD>(vb, dp * 16, kk * 16, lane));
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma_bf16(o[mt][2 * dp], pa[mt], bf[0], bf[1]);
          mma_bf16(o[mt][2 * dp + 1], pa[mt], bf[2], bf[3]);
        }
      }
    }
    __syncthreads();  // the next iteration's copy overwrites this buffer
  }

#pragma unroll
  for (int x = 0; x < 2 * MT; ++x) {
    const int mt = x >> 1, half = x & 1;
    const int i = i0 + warp * 16 * MT + 16 * mt + 8 * half + gid;
    float sum = l[x];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    if (i >= d.tq) continue;
    const bool any = sum > 0.0f;
    const float inv = any ? 1.0f / sum : 0.0f;
    bf16* o_row = out + d.q_row(b, i, h);
#pragma unroll
    for (int nd = 0; nd < ND; ++nd) {
      *reinterpret_cast<__nv_bfloat162*>(o_row + nd * 8 + 2 * tig) =
          __floats2bfloat162_rn(o[mt][nd][2 * half] * inv, o[mt][nd][2 * half + 1] * inv);
    }
    if (tig == 0) lse[d.lse_at(b, h, i)] = any ? (m[x] + log2f(sum)) * kLn2 : -INFINITY;
  }
}

template <int D, int MT>
void launch_forward_tc(const AttnDims& d, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& segment_ids, float scale, const Tensor& out,
                       const Tensor& lse) {
  constexpr int BQ = 16 * MT * kWarps;
  const int n_qtiles = (d.tq + BQ - 1) / BQ;
  const int64_t blocks = static_cast<int64_t>(n_qtiles) * d.hq * d.batch;
  const std::string detail = describe({{"q", &q},
                                       {"k", &k},
                                       {"v", &v},
                                       {"segment_ids", &segment_ids},
                                       {"out", &out},
                                       {"lse", &lse}});
  RLAIF_CHECK(blocks <= 0x7fffffff, "attention: too many query tiles: ", detail);
  constexpr size_t smem = forward_tc_smem_bytes<D, MT>();
  auto kernel = attention_forward_tc_kernel<D, MT>;
  attn::allow_smem(kernel, smem, "attention_forward_tc_kernel");
  kernel<<<static_cast<unsigned>(blocks), kTcThreads, smem>>>(
      ptr<bf16>(q), ptr<bf16>(k), ptr<bf16>(v),
      segment_ids.defined() ? ptr<int32_t>(segment_ids) : nullptr, ptr<bf16>(out), ptr<float>(lse),
      d, scale, n_qtiles);
  check_launch("attention_forward_tc_kernel", detail);
}

}  // namespace

bool attention_forward_tc(const AttnDims& d, const Tensor& q, const Tensor& k, const Tensor& v,
                          const Tensor& segment_ids, float scale, const Tensor& out,
                          const Tensor& lse) {
  if (q.dtype() != DType::bf16 || (d.dh != 64 && d.dh != 128)) return false;
  if (!tc_aligned({&q, &k, &v, &out})) return false;
  if (d.dh == 64) {
    launch_forward_tc<64, 2>(d, q, k, v, segment_ids, scale, out, lse);
  } else {
    launch_forward_tc<128, 1>(d, q, k, v, segment_ids, scale, out, lse);
  }
  return true;
}

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
