// Attention on tensor cores, forward, for bf16 with head size 64 or 128. Every other
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
// The backward kernels are in cuda_attention_tc_backward.cu.
#include <cmath>

#include "kernels/cuda/cuda_attention_tc.cuh"

namespace rlaif::cuda {
namespace {

using namespace attn;
using namespace attn_tc;

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

}  // namespace rlaif::cuda
