// Attention forward on CUDA: a flash-attention kernel (Dao et al. 2022, with FlashAttention-2's
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
// bf16 with Dh ∈ {64, 128} takes the tensor-core kernel of cuda_attention_tc.cu instead; this
// file holds the simple path every other case takes, and the argument checks.
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

}  // namespace rlaif::cuda
