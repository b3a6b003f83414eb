// Scaled dot-product attention with causal masking, grouped-query heads, a KV-cache length, an
// optional sliding window and optional segments; forward and backward, as blocked matrix products
// through cblas_sgemm.
//
// Layouts: q, out, dq [B, Tq, Hq, Dh]; k, v, dk, dv [B, Tk, Hkv, Dh]; lse [B, Hq, Tq];
// segment_ids [B, Tk]. Query head h reads kv head g = h / (Hq/Hkv). One head's rows are strided:
// query rows by Hq·Dh, key rows by Hkv·Dh; sgemm takes those as leading dimensions, so no input
// is copied.
//
// Masking: query i sits at key position p(i) = kv_len - Tq + i and may attend key j iff j ≤ p(i),
// (with a window W > 0) j > p(i) - W, and (with segments) segment_ids[b, j] == segment_ids[b,
// p(i)]. Key p(i) itself always passes every test, so the only queries with no allowed key are
// those with p(i) < 0 (Tq > kv_len); they get out = 0, lse = -inf and no gradient.
//
// Queries are taken in blocks of kBlock rows. Block [i0, i1) can only need keys [lo, n) with
// n = p(i1 - 1) + 1 ≤ kv_len and lo the larger of p(i0) - W + 1 (with a window) and, with
// segments, the first key sharing a segment with one of its rows (0 without either). Every
// product is restricted to those keys: this skips most of the causally masked upper triangle, the
// keys behind every row's window and the earlier examples of a packed sequence, and keys at or
// past kv_len are never read (tests fill them with NaN). Within the block, the entries of row i
// that are not allowed get score -inf, hence probability exactly 0, and contribute exactly 0 to
// every product (keys in [0, kv_len) hold finite values).
//
// Forward, per block, with S the [rows, n - lo] scores and P the probabilities:
//   S = scale·Q Kᵀ                                                   (sgemm)
//   per row: m = max_j S_ij,  e_j = exp(S_ij - m),  σ = Σ_j e_j,  lse_i = m + log σ
//   out = (E V) / σ  = Σ_j exp(S_ij - lse_i)·v_j                      (sgemm, then a row scale)
// Backward, per block, with P = exp(S - lse) recomputed from the saved lse:
//   dV += Pᵀ dO;  dP = dO Vᵀ;  Δ_i = Σ_d dO·O;  dS = P ⊙ (dP - Δ);
//   dQ = scale·dS K;  dK += scale·dSᵀ Q                                (all sgemm)
//
// Precision: scores, probabilities and products are f32 (sgemm accumulates in f32, and dk/dv
// accumulate over heads and blocks in f32); the row sums σ and Δ accumulate in double, and lse
// is formed in double from them. exp is the Cephes single-precision polynomial (relative error
// below 1e-7) on SIMD vectors, about 2.5 times faster per score than glibc's scalar expf, which
// would otherwise be a large share of the time. Against a reference loop in double precision,
// outputs differ by a few f32 ulps.
//
// Determinism: a task owns its outputs (forward: one (batch entry, query head); backward: one
// (batch entry, kv head), which owns dk/dv of that head and dq of its query heads) and runs a
// fixed sequence of operations: query heads in order, blocks in order, dk/dv accumulated by
// sgemm with beta = 1 in that order. Inside the OpenMP region OpenBLAS (OpenMP build) runs each
// sgemm on the calling thread, and elsewhere it splits only rows and columns of C, never the
// inner sum, so results are bitwise the same run to run and for any thread count.
#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_checks.h"

namespace rlaif {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Query rows per block: small enough to skip most of the causal triangle, large enough that
// sgemm runs at speed and its per-call cost is amortised (32 and 128 measured no better).
constexpr int64_t kBlock = 64;

// The sizes of one attention call, validated.
struct Dims {
  int64_t batch, tq, tk, hq, hkv, dh;
  int64_t kv_len;  // number of valid keys, in [0, tk]
  int64_t window;  // sliding window, 0 = none
  int64_t group;   // query heads per kv head, hq / hkv

  // Element offsets of row (b, t, head) in the q-shaped and k-shaped tensors, and of lse[b, h, i].
  int64_t q_row(int64_t b, int64_t t, int64_t h) const { return ((b * tq + t) * hq + h) * dh; }
  int64_t k_row(int64_t b, int64_t t, int64_t g) const { return ((b * tk + t) * hkv + g) * dh; }
  int64_t lse_at(int64_t b, int64_t h, int64_t i) const { return (b * hq + h) * tq + i; }
  // Leading dimensions (row strides) of one head's rows in q-shaped and k-shaped tensors.
  int64_t q_ld() const { return hq * dh; }
  int64_t k_ld() const { return hkv * dh; }
  // Key position of query i; queries below first_query() have none (p < 0).
  int64_t pos(int64_t i) const { return kv_len - tq + i; }
  int64_t first_query() const { return std::clamp<int64_t>(tq - kv_len, 0, tq); }
};

Dims check_attention(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                     const Tensor& segment_ids, int64_t kv_len, int64_t window, const Tensor& out,
                     const Tensor& lse) {
  cpu::expect(op, "q", q, DType::f32);
  RLAIF_CHECK(q.dim() == 4, op, ": q is ", q, " but must be [B, Tq, Hq, Dh]");
  cpu::expect(op, "k", k, DType::f32);
  RLAIF_CHECK(k.dim() == 4, op, ": k is ", k, " but must be [B, Tk, Hkv, Dh]");
  cpu::expect(op, "v", v, DType::f32, k.shape());
  Dims d{};
  d.batch = q.size(0);
  d.tq = q.size(1);
  d.hq = q.size(2);
  d.dh = q.size(3);
  d.tk = k.size(1);
  d.hkv = k.size(2);
  RLAIF_CHECK(k.size(0) == d.batch && k.size(3) == d.dh, op, ": k ", k,
              " must match q's batch and head size (q is ", q, ")");
  RLAIF_CHECK(d.hkv >= 1 && d.hq % d.hkv == 0, op, ": q has ", d.hq, " heads and k has ", d.hkv,
              ": the query heads must be a multiple of the kv heads (q ", q, ", k ", k, ")");
  d.group = d.hq / d.hkv;
  RLAIF_CHECK(kv_len == -1 || (kv_len >= 0 && kv_len <= d.tk), op, ": kv_len = ", kv_len,
              " must be -1 (all keys) or in [0, Tk = ", d.tk, "] (k is ", k, ")");
  d.kv_len = kv_len == -1 ? d.tk : kv_len;
  RLAIF_CHECK(window >= 0, op, ": window = ", window, " must be 0 (none) or positive");
  d.window = window;
  if (segment_ids.defined()) {
    cpu::expect(op, "segment_ids", segment_ids, DType::i32, {d.batch, d.tk});
  }
  cpu::expect(op, "out", out, DType::f32, q.shape());
  cpu::expect(op, "lse", lse, DType::f32, {d.batch, d.hq, d.tq});
  RLAIF_CHECK(d.q_ld() <= INT_MAX && d.tk <= INT_MAX, op,
              ": dimensions exceed OpenBLAS's 32-bit sizes: q ", q, ", k ", k);
  return d;
}

// C[m, n] = alpha · op(A) op(B) + beta · C, row-major, beta ∈ {0, 1}; with beta = 0 C is never
// read. Empty products are handled here: BLAS rejects leading dimensions of 0.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (beta == 0.0f) {
      for (int64_t r = 0; r < m; ++r) std::fill_n(c + r * ldc, n, 0.0f);
    }
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

// Four floats in one GCC/Clang vector (an SSE register): the compiler does not if-convert the
// float selects below in plain loops (no -ffast-math here), so the row loops are written on
// vectors.
using f32x4 = float __attribute__((vector_size(16)));
using i32x4 = int32_t __attribute__((vector_size(16)));
using u32x4 = uint32_t __attribute__((vector_size(16)));
constexpr int64_t kLanes = 4;

f32x4 splat(float x) {
  return f32x4{} + x;
}
f32x4 load(const float* p) {
  f32x4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
// The first n < kLanes elements of p, the rest `fill`.
f32x4 load_part(const float* p, int64_t n, float fill) {
  float tmp[kLanes];
  std::fill_n(tmp, kLanes, fill);
  std::copy_n(p, n, tmp);
  return load(tmp);
}

// exp(t) per lane, in f32, for a vector type F of floats (I: ints, U: unsigned of its width).
// Cephes expf: with t clamped to [-87, 88.38], t = k·ln2 + r (k = round(t/ln2), ln2 split in two
// so that k·ln2_hi is exact, |r| ≤ ln2/2), exp(r) ≈ 1 + r + r²·poly(r), and 2^k is built in the
// exponent bits. Relative error below 1e-7 (measured max 7.8e-8). t < -87 (including -inf, the
// masked scores) gives exactly 0: e^-87 ≈ 1.6e-38 is still a normal float, so P never holds
// subnormals, which are slow in sgemm and below any row sum's rounding anyway. t above 88.38
// (not reached: t ≤ 0 up to rounding here) saturates at 3.4e38; NaN stays NaN. Only lane-wise
// IEEE operations, and no fused multiply-add on either x86 path, so both widths give the same
// bits. (Taken and returned by reference: a 32-byte vector by value would change the ABI.)
template <typename F, typename I, typename U>
[[gnu::always_inline]] inline void exp_lanes(F& v) {
  const F t = v;
  const F lo = F{} - 87.0f, hi = F{} + 88.37626f, round = F{} + 12582912.0f;
  F tc = t > lo ? t : lo;  // NaN becomes lo here, and is restored below
  tc = tc < hi ? tc : hi;
  const F kf = (tc * 1.44269504088896341f + round) - round;  // round(t/ln2), 1.5·2^23 trick
  F r = tc - kf * 0.693359375f;
  r = r - kf * -2.12194440e-4f;
  F p = F{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const F e = p * (r * r) + r + 1.0f;
  const U bits = __builtin_convertvector(__builtin_convertvector(kf, I) + 127, U) << 23;
  F two_k;
  std::memcpy(&two_k, &bits, sizeof two_k);
  const F zero_or_nan = t < lo ? F{} : t;
  v = t >= lo ? e * two_k : zero_or_nan;
}

// x[j] = exp(x[j] - shift) for j < n, W floats at a time; the tail goes through one padded
// vector.
template <typename F, typename I, typename U>
[[gnu::always_inline]] inline void exp_shifted_lanes(float* x, int64_t n, float shift) {
  constexpr int64_t W = sizeof(F) / sizeof(float);
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    F v;
    std::memcpy(&v, x + j, sizeof v);
    v -= shift;
    exp_lanes<F, I, U>(v);
    std::memcpy(x + j, &v, sizeof v);
  }
  if (j < n) {
    float tmp[W] = {};
    std::copy_n(x + j, n - j, tmp);
    F v;
    std::memcpy(&v, tmp, sizeof v);
    v -= shift;
    exp_lanes<F, I, U>(v);
    std::memcpy(tmp, &v, sizeof v);
    std::copy_n(tmp, n - j, x + j);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
// The same on AVX2's eight lanes, picked at run time where the CPU has it (the build targets
// x86-64-v2). Same bits as the SSE path: see exp_lanes.
using f32x8 = float __attribute__((vector_size(32)));
using i32x8 = int32_t __attribute__((vector_size(32)));
using u32x8 = uint32_t __attribute__((vector_size(32)));
[[gnu::target("avx2")]] void exp_shifted_avx2(float* x, int64_t n, float shift) {
  exp_shifted_lanes<f32x8, i32x8, u32x8>(x, n, shift);
}
bool have_avx2() {
  static const bool have = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return have;
}
#endif

// x[j] = exp(x[j] - shift) for j < n.
void exp_shifted(float* x, int64_t n, float shift) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (have_avx2()) return exp_shifted_avx2(x, n, shift);
#endif
  exp_shifted_lanes<f32x4, i32x4, u32x4>(x, n, shift);
}

// Reductions over a row keep kLanes interleaved partial results, combined in a fixed order: the
// order depends on n only.

// max_j x[j] (NaN entries are skipped; -inf when n = 0 or everything is -inf).
float row_max(const float* x, int64_t n) {
  f32x4 lane = splat(kNegInf);
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    const f32x4 v = load(x + j);
    lane = v > lane ? v : lane;
  }
  if (j < n) {
    const f32x4 v = load_part(x + j, n - j, kNegInf);
    lane = v > lane ? v : lane;
  }
  float m = kNegInf;
  for (int64_t l = 0; l < kLanes; ++l) m = lane[l] > m ? lane[l] : m;
  return m;
}

// Σ_j x[j] in double.
double row_sum(const float* x, int64_t n) {
  double lane[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) lane[l] += x[j + l];
  }
  for (; j < n; ++j) lane[0] += x[j];
  double s = 0.0;
  for (int64_t l = 0; l < kLanes; ++l) s += lane[l];
  return s;
}

// The keys [lo, n) that a block of query rows [i0, i0 + rows) may need: n = p(last row) + 1
// (causal); lo = p(first row) - W + 1 with a window W, and with segments at least the first key
// that shares a segment with any of the rows (the first occurrence of each row's id; ids need not
// be contiguous). Every key outside [lo, n) is masked for every row of the block, so the products
// skip it.
struct Block {
  int64_t i0, rows, lo, n;
  int64_t width() const { return n - lo; }
};

Block make_block(const Dims& d, const int32_t* seg_b, int64_t i0) {
  Block blk{i0, std::min(kBlock, d.tq - i0), 0, 0};
  const int64_t p_first = d.pos(i0), p_last = d.pos(i0 + blk.rows - 1);
  blk.n = p_last + 1;
  const int64_t window_lo = d.window > 0 ? std::max<int64_t>(0, p_first - d.window + 1) : 0;
  blk.lo = window_lo;
  if (seg_b == nullptr) return blk;
  // Key p(i) is allowed for row i, so lo ≤ p_first; each new id only needs a search below the
  // current lo. Runs of equal ids (the usual case) are searched once.
  blk.lo = p_first;
  for (int64_t p = p_first; p <= p_last; ++p) {
    if (p > p_first && seg_b[p] == seg_b[p - 1]) continue;
    for (int64_t j = window_lo; j < blk.lo; ++j) {
      if (seg_b[j] == seg_b[p]) {
        blk.lo = j;
        break;
      }
    }
  }
  return blk;
}

// The scratch of one task: a [kBlock, kv_len] block of scores or probabilities and one of dP.
// Thread-local so a training step does not allocate per call.
std::vector<float>& scratch(int which, size_t size) {
  thread_local std::vector<float> buffers[2];
  std::vector<float>& buf = buffers[which];
  if (buf.size() < size) buf.resize(size);
  return buf;
}

// P for the block's queries of head h over its keys [lo, n), as a [rows, n - lo] matrix:
// P = exp(scale·Q Kᵀ - shift_i) on the allowed keys and exactly 0 elsewhere. The shift is the
// row maximum in the forward pass (returned in row_shift, with the row sums in row_sum_out) and
// the saved lse in the backward pass (row_shift given, row_sum_out null).
void block_probabilities(const Dims& d, const float* qp, const float* kp, const int32_t* seg_b,
                         int64_t b, int64_t h, const Block& blk, float scale, float* p,
                         float* row_shift, double* row_sum_out) {
  const int64_t w = blk.width();
  gemm(false, true, blk.rows, w, d.dh, scale, qp + d.q_row(b, blk.i0, h), d.q_ld(),
       kp + d.k_row(b, blk.lo, h / d.group), d.k_ld(), 0.0f, p, w);
  for (int64_t r = 0; r < blk.rows; ++r) {
    float* pr = p + r * w;
    const int64_t pos = d.pos(blk.i0 + r);
    const int64_t n_i = pos + 1 - blk.lo;  // the row's causal keys [lo, p(i)]: pr[0, n_i)
    if (d.window > 0) {  // keys behind the row's window: score -inf, so probability 0
      const int64_t behind = std::max<int64_t>(0, pos - d.window + 1 - blk.lo);
      std::fill_n(pr, behind, kNegInf);
    }
    if (seg_b != nullptr) {  // other segments: score -inf, so probability 0
      const int32_t own = seg_b[pos];
      const int32_t* seg_row = seg_b + blk.lo;
      for (int64_t j = 0; j < n_i; ++j) pr[j] = seg_row[j] == own ? pr[j] : kNegInf;
    }
    if (row_sum_out != nullptr) row_shift[r] = row_max(pr, n_i);
    if (row_shift[r] == kNegInf) {
      // Only reachable from an inconsistent lse: no probability mass, so no gradient.
      std::fill_n(pr, w, 0.0f);
    } else {
      exp_shifted(pr, n_i, row_shift[r]);
      std::fill(pr + n_i, pr + w, 0.0f);
    }
    if (row_sum_out != nullptr) row_sum_out[r] = row_sum(pr, n_i);
  }
}

}  // namespace

void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v,
                           const Tensor& segment_ids, int64_t kv_len, int64_t window, float scale,
                           const Tensor& out, const Tensor& lse) {
  const char* op = "attention";
  const Dims d = check_attention(op, q, k, v, segment_ids, kv_len, window, out, lse);

  const float* qp = q.data<float>();
  const float* kp = k.data<float>();
  const float* vp = v.data<float>();
  const int32_t* seg = segment_ids.defined() ? segment_ids.data<int32_t>() : nullptr;
  float* op_out = out.data<float>();
  float* lse_out = lse.data<float>();

  // One task per (batch entry, query head): it owns those rows of out and lse.
  cpu::parallel_for(d.batch * d.hq, d.tq * d.kv_len * d.dh, [&](int64_t task) {
    const int64_t b = task / d.hq, h = task % d.hq, g = h / d.group;
    const int32_t* seg_b = seg != nullptr ? seg + b * d.tk : nullptr;
    const int64_t first = d.first_query();
    for (int64_t i = 0; i < first; ++i) {  // no allowed key: nothing to average
      std::fill_n(op_out + d.q_row(b, i, h), d.dh, 0.0f);
      lse_out[d.lse_at(b, h, i)] = kNegInf;
    }
    float* p = scratch(0, static_cast<size_t>(kBlock * d.kv_len)).data();
    float row_m[kBlock];
    double row_s[kBlock];
    for (int64_t i0 = first; i0 < d.tq; i0 += kBlock) {
      const Block blk = make_block(d, seg_b, i0);
      block_probabilities(d, qp, kp, seg_b, b, h, blk, scale, p, row_m, row_s);
      // out = E V, unnormalised, then each row divided by its σ.
      float* o = op_out + d.q_row(b, i0, h);
      gemm(false, false, blk.rows, d.dh, blk.width(), 1.0f, p, blk.width(),
           vp + d.k_row(b, blk.lo, g), d.k_ld(), 0.0f, o, d.q_ld());
      for (int64_t r = 0; r < blk.rows; ++r) {
        const float inv = static_cast<float>(1.0 / row_s[r]);
        float* o_r = o + r * d.q_ld();
        for (int64_t c = 0; c < d.dh; ++c) o_r[c] *= inv;
        lse_out[d.lse_at(b, h, i0 + r)] =
            static_cast<float>(static_cast<double>(row_m[r]) + std::log(row_s[r]));
      }
    }
  });
}

void CpuBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& segment_ids, int64_t kv_len, int64_t window,
                                    float scale, const Tensor& out, const Tensor& lse,
                                    const Tensor& dout, const Tensor& dq, const Tensor& dk,
                                    const Tensor& dv) {
  const char* op = "attention_backward";
  const Dims d = check_attention(op, q, k, v, segment_ids, kv_len, window, out, lse);
  cpu::expect(op, "dout", dout, DType::f32, q.shape());
  cpu::expect(op, "dq", dq, DType::f32, q.shape());
  cpu::expect(op, "dk", dk, DType::f32, k.shape());
  cpu::expect(op, "dv", dv, DType::f32, k.shape());

  const float* qp = q.data<float>();
  const float* kp = k.data<float>();
  const float* vp = v.data<float>();
  const float* outp = out.data<float>();
  const float* lsep = lse.data<float>();
  const float* dyp = dout.data<float>();
  const int32_t* seg = segment_ids.defined() ? segment_ids.data<int32_t>() : nullptr;
  float* dqp = dq.data<float>();
  float* dkp = dk.data<float>();
  float* dvp = dv.data<float>();

  // One task per (batch entry, kv head). dk and dv of that kv head sum over its query heads and
  // their query blocks, so the task owns them and accumulates into them in the fixed order
  // (query head, block); it also owns dq of its query heads. No two tasks touch one output.
  cpu::parallel_for(d.batch * d.hkv, d.group * d.tq * d.kv_len * d.dh * 4, [&](int64_t task) {
    const int64_t b = task / d.hkv, g = task % d.hkv;
    const int32_t* seg_b = seg != nullptr ? seg + b * d.tk : nullptr;
    // Keys at or past kv_len are never read and keep this 0; the others accumulate on it.
    for (int64_t j = 0; j < d.tk; ++j) {
      std::fill_n(dkp + d.k_row(b, j, g), d.dh, 0.0f);
      std::fill_n(dvp + d.k_row(b, j, g), d.dh, 0.0f);
    }
    const size_t block_size = static_cast<size_t>(kBlock * d.kv_len);
    float* p = scratch(0, block_size).data();
    float* ds = scratch(1, block_size).data();
    float row_l[kBlock];
    const int64_t first = d.first_query();
    for (int64_t h = g * d.group; h < (g + 1) * d.group; ++h) {
      for (int64_t i = 0; i < first; ++i) std::fill_n(dqp + d.q_row(b, i, h), d.dh, 0.0f);
      for (int64_t i0 = first; i0 < d.tq; i0 += kBlock) {
        const Block blk = make_block(d, seg_b, i0);
        const int64_t w = blk.width();
        for (int64_t r = 0; r < blk.rows; ++r) row_l[r] = lsep[d.lse_at(b, h, i0 + r)];
        block_probabilities(d, qp, kp, seg_b, b, h, blk, scale, p, row_l, nullptr);
        const float* q_blk = qp + d.q_row(b, i0, h);
        const float* dy = dyp + d.q_row(b, i0, h);
        const float* k_blk = kp + d.k_row(b, blk.lo, g);
        const float* v_blk = vp + d.k_row(b, blk.lo, g);
        float* dk_blk = dkp + d.k_row(b, blk.lo, g);
        float* dv_blk = dvp + d.k_row(b, blk.lo, g);
        // dV += Pᵀ dO;  dP = dO Vᵀ
        gemm(true, false, w, d.dh, blk.rows, 1.0f, p, w, dy, d.q_ld(), 1.0f, dv_blk, d.k_ld());
        gemm(false, true, blk.rows, w, d.dh, 1.0f, dy, d.q_ld(), v_blk, d.k_ld(), 0.0f, ds, w);
        // dS = P ⊙ (dP - Δ), Δ_i = Σ_d dO·O in double. Entries with P = 0 become exactly 0.
        for (int64_t r = 0; r < blk.rows; ++r) {
          const float* dy_r = dy + r * d.q_ld();
          const float* o_r = outp + d.q_row(b, i0 + r, h);
          double delta = 0.0;
          for (int64_t c = 0; c < d.dh; ++c) delta += static_cast<double>(dy_r[c]) * o_r[c];
          const float delta_f = static_cast<float>(delta);
          const float* p_r = p + r * w;
          float* ds_r = ds + r * w;
          for (int64_t j = 0; j < w; ++j) ds_r[j] = p_r[j] * (ds_r[j] - delta_f);
        }
        // dQ = scale·dS K;  dK += scale·dSᵀ Q
        gemm(false, false, blk.rows, d.dh, w, scale, ds, w, k_blk, d.k_ld(), 0.0f,
             dqp + d.q_row(b, i0, h), d.q_ld());
        gemm(true, false, w, d.dh, blk.rows, scale, ds, w, q_blk, d.q_ld(), 1.0f, dk_blk, d.k_ld());
      }
    }
  });
}

}  // namespace rlaif
