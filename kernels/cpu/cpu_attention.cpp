// Scaled dot-product attention with causal masking, grouped-query heads, a KV-cache length and
// optional segments; forward and backward. A plain O(Tq·Tk·Dh) loop per head: the reference that
// fused GPU kernels (flash attention) are checked against.
//
// Layouts: q, out, dq [B, Tq, Hq, Dh]; k, v, dk, dv [B, Tk, Hkv, Dh]; lse [B, Hq, Tq];
// segment_ids [B, Tk]. Query head h reads kv head h / (Hq/Hkv).
//
// Masking: query i sits at key position p(i) = kv_len - Tq + i and may attend key j iff j ≤ p(i)
// and (with segments) segment_ids[b, j] == segment_ids[b, p(i)]. Key p(i) itself always passes
// both tests, so the only queries with no allowed key are those with p(i) < 0 (Tq > kv_len);
// they get out = 0, lse = -inf and no gradient.
//
// Forward, per query row with scores s_j = scale·q·k_j over the allowed keys:
//   m = max_j s_j,  lse = m + log Σ_j exp(s_j - m),  out = Σ_j exp(s_j - lse)·v_j
// Backward, with P_j = exp(s_j - lse) recomputed from the saved lse and Δ = Σ_d dout·out:
//   dv_j += P_j·dout,  dS_j = P_j·(dout·v_j - Δ),  dq = scale·Σ_j dS_j·k_j,  dk_j += scale·dS_j·q
// All sums run in double, in a fixed order.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_checks.h"

namespace rlaif {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// The sizes of one attention call, validated.
struct Dims {
  int64_t batch, tq, tk, hq, hkv, dh;
  int64_t kv_len;  // number of valid keys, in [0, tk]
  int64_t group;   // query heads per kv head, hq / hkv

  // Element offsets of row (b, t, head) in the q-shaped and k-shaped tensors, and of lse[b, h, i].
  int64_t q_row(int64_t b, int64_t t, int64_t h) const { return ((b * tq + t) * hq + h) * dh; }
  int64_t k_row(int64_t b, int64_t t, int64_t g) const { return ((b * tk + t) * hkv + g) * dh; }
  int64_t lse_at(int64_t b, int64_t h, int64_t i) const { return (b * hq + h) * tq + i; }
};

Dims check_attention(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                     const Tensor& segment_ids, int64_t kv_len, const Tensor& out,
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
  if (segment_ids.defined()) {
    cpu::expect(op, "segment_ids", segment_ids, DType::i32, {d.batch, d.tk});
  }
  cpu::expect(op, "out", out, DType::f32, q.shape());
  cpu::expect(op, "lse", lse, DType::f32, {d.batch, d.hq, d.tq});
  return d;
}

double dot(const float* a, const float* b, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// The keys query i of batch entry b may attend: allowed[j] for j in [0, p(i)], where
// p(i) = kv_len - Tq + i. Returns p(i) + 1, the length of the causal prefix (≤ 0: no key).
int64_t allowed_keys(const Dims& d, const int32_t* seg, int64_t b, int64_t i,
                     std::vector<char>& allowed) {
  const int64_t p = d.kv_len - d.tq + i;
  for (int64_t j = 0; j <= p; ++j) {
    allowed[j] = seg == nullptr || seg[b * d.tk + j] == seg[b * d.tk + p];
  }
  return p + 1;
}

}  // namespace

void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v,
                           const Tensor& segment_ids, int64_t kv_len, float scale,
                           const Tensor& out, const Tensor& lse) {
  const char* op = "attention";
  const Dims d = check_attention(op, q, k, v, segment_ids, kv_len, out, lse);

  const float* qp = q.data<float>();
  const float* kp = k.data<float>();
  const float* vp = v.data<float>();
  const int32_t* seg = segment_ids.defined() ? segment_ids.data<int32_t>() : nullptr;
  float* op_out = out.data<float>();
  float* lse_out = lse.data<float>();

  // One task per (batch entry, query head): it owns those rows of out and lse.
  cpu::parallel_for(d.batch * d.hq, d.tq * d.kv_len * d.dh, [&](int64_t task) {
    const int64_t b = task / d.hq, h = task % d.hq, g = h / d.group;
    std::vector<char> allowed(static_cast<size_t>(d.kv_len));
    std::vector<double> score(static_cast<size_t>(d.kv_len));
    std::vector<double> acc(static_cast<size_t>(d.dh));
    for (int64_t i = 0; i < d.tq; ++i) {
      float* o = op_out + d.q_row(b, i, h);
      const int64_t n_keys = allowed_keys(d, seg, b, i, allowed);
      if (n_keys <= 0) {  // no allowed key: nothing to average
        std::fill(o, o + d.dh, 0.0f);
        lse_out[d.lse_at(b, h, i)] = -std::numeric_limits<float>::infinity();
        continue;
      }
      const float* qi = qp + d.q_row(b, i, h);
      double m = kNegInf;
      for (int64_t j = 0; j < n_keys; ++j) {
        if (!allowed[j]) continue;
        score[j] = scale * dot(qi, kp + d.k_row(b, j, g), d.dh);
        m = std::max(m, score[j]);
      }
      double sum = 0.0;
      for (int64_t j = 0; j < n_keys; ++j) {
        if (allowed[j]) sum += std::exp(score[j] - m);
      }
      const double l = m + std::log(sum);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < n_keys; ++j) {
        if (!allowed[j]) continue;
        const double p = std::exp(score[j] - l);
        const float* vj = vp + d.k_row(b, j, g);
        for (int64_t c = 0; c < d.dh; ++c) acc[c] += p * vj[c];
      }
      for (int64_t c = 0; c < d.dh; ++c) o[c] = static_cast<float>(acc[c]);
      lse_out[d.lse_at(b, h, i)] = static_cast<float>(l);
    }
  });
}

void CpuBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& segment_ids, int64_t kv_len, float scale,
                                    const Tensor& out, const Tensor& lse, const Tensor& dout,
                                    const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  const char* op = "attention_backward";
  const Dims d = check_attention(op, q, k, v, segment_ids, kv_len, out, lse);
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
  // their queries, so the task owns them and accumulates privately, in the fixed order
  // (query head, query); it also owns dq of its query heads. No two tasks touch one output.
  cpu::parallel_for(d.batch * d.hkv, d.group * d.tq * d.kv_len * d.dh * 4, [&](int64_t task) {
    const int64_t b = task / d.hkv, g = task % d.hkv;
    std::vector<char> allowed(static_cast<size_t>(d.kv_len));
    std::vector<double> dk_acc(static_cast<size_t>(d.kv_len * d.dh), 0.0);
    std::vector<double> dv_acc(static_cast<size_t>(d.kv_len * d.dh), 0.0);
    std::vector<double> dq_acc(static_cast<size_t>(d.dh));
    for (int64_t h = g * d.group; h < (g + 1) * d.group; ++h) {
      for (int64_t i = 0; i < d.tq; ++i) {
        const int64_t row = d.q_row(b, i, h);
        std::fill(dq_acc.begin(), dq_acc.end(), 0.0);
        const int64_t n_keys = allowed_keys(d, seg, b, i, allowed);
        const double l = lsep[d.lse_at(b, h, i)];
        if (n_keys > 0 && l != kNegInf) {
          const float* qi = qp + row;
          const float* dyi = dyp + row;
          const double delta = dot(dyi, outp + row, d.dh);  // Δ = Σ_d dout·out
          for (int64_t j = 0; j < n_keys; ++j) {
            if (!allowed[j]) continue;
            const float* kj = kp + d.k_row(b, j, g);
            const float* vj = vp + d.k_row(b, j, g);
            const double p = std::exp(scale * dot(qi, kj, d.dh) - l);
            const double ds = p * (dot(dyi, vj, d.dh) - delta);
            double* dkj = dk_acc.data() + j * d.dh;
            double* dvj = dv_acc.data() + j * d.dh;
            for (int64_t c = 0; c < d.dh; ++c) {
              dq_acc[c] += scale * ds * kj[c];
              dkj[c] += scale * ds * qi[c];
              dvj[c] += p * dyi[c];
            }
          }
        }
        for (int64_t c = 0; c < d.dh; ++c) dqp[row + c] = static_cast<float>(dq_acc[c]);
      }
    }
    // Keys at or past kv_len were never read: their gradient is 0.
    for (int64_t j = 0; j < d.tk; ++j) {
      float* dkj = dkp + d.k_row(b, j, g);
      float* dvj = dvp + d.k_row(b, j, g);
      for (int64_t c = 0; c < d.dh; ++c) {
        dkj[c] = j < d.kv_len ? static_cast<float>(dk_acc[j * d.dh + c]) : 0.0f;
        dvj[c] = j < d.kv_len ? static_cast<float>(dv_acc[j * d.dh + c]) : 0.0f;
      }
    }
  });
}

}  // namespace rlaif
