// CPU attention, forward and backward: against a double-precision loop written here (with the
// mask spelled out as backend.h states it) and central finite differences of that loop, over
// grouped-query heads, segments (padding and packing), sliding windows, a partly filled KV cache
// and decoding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/backend.h"
#include "tests/kernels/conformance.h"
#include "tests/support/backends.h"
#include "tests/support/threads.h"

namespace rlaif {
namespace {

using testing::random_tensor;

using test::cpu;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

using test::ScopedThreads;

// One attention problem: sizes, inputs (host, in double for the reference) and options.
struct Problem {
  Problem(int64_t b_, int64_t tq_, int64_t tk_, int64_t hq_, int64_t hkv_, int64_t dh_)
      : b(b_), tq(tq_), tk(tk_), hq(hq_), hkv(hkv_), dh(dh_) {}

  int64_t b, tq, tk, hq, hkv, dh;
  int64_t kv_len = -1;
  int64_t window = 0;             // sliding window, 0 = none
  std::vector<int32_t> segments;  // [B, Tk], empty = none
  float scale = 0.0f;             // 0: 1/√Dh

  float the_scale() const { return scale != 0.0f ? scale : 1.0f / std::sqrt(float(dh)); }
  int64_t valid() const { return kv_len == -1 ? tk : kv_len; }
  Shape q_shape() const { return {b, tq, hq, dh}; }
  Shape k_shape() const { return {b, tk, hkv, dh}; }
  Tensor segment_tensor() const {
    return segments.empty() ? Tensor() : Tensor::from_vector(segments, {b, tk});
  }
  // Whether query i of batch entry bi may attend key j: backend.h's rule.
  bool allowed(int64_t bi, int64_t i, int64_t j) const {
    const int64_t p = valid() - tq + i;
    if (j > p || p < 0) return false;
    if (window > 0 && j <= p - window) return false;
    return segments.empty() || segments[bi * tk + j] == segments[bi * tk + p];
  }
};

// The reference forward in double: out [B, Tq, Hq, Dh] and lse [B, Hq, Tq].
void attention_ref(const Problem& pr, const std::vector<double>& q, const std::vector<double>& k,
                   const std::vector<double>& v, std::vector<double>* out,
                   std::vector<double>* lse) {
  const int64_t group = pr.hq / pr.hkv;
  const double scale = pr.the_scale();
  out->assign(static_cast<size_t>(pr.b * pr.tq * pr.hq * pr.dh), 0.0);
  lse->assign(static_cast<size_t>(pr.b * pr.hq * pr.tq), -INFINITY);
  for (int64_t b = 0; b < pr.b; ++b) {
    for (int64_t h = 0; h < pr.hq; ++h) {
      const int64_t g = h / group;
      for (int64_t i = 0; i < pr.tq; ++i) {
        const double* qi = q.data() + ((b * pr.tq + i) * pr.hq + h) * pr.dh;
        std::vector<double> s(static_cast<size_t>(pr.tk), -INFINITY);
        double m = -INFINITY;
        for (int64_t j = 0; j < pr.tk; ++j) {
          if (!pr.allowed(b, i, j)) continue;
          const double* kj = k.data() + ((b * pr.tk + j) * pr.hkv + g) * pr.dh;
          double dot = 0.0;
          for (int64_t c = 0; c < pr.dh; ++c) dot += qi[c] * kj[c];
          s[j] = scale * dot;
          m = std::max(m, s[j]);
        }
        if (m == -INFINITY) continue;  // no allowed key: out = 0, lse = -inf
        double z = 0.0;
        for (int64_t j = 0; j < pr.tk; ++j) z += std::exp(s[j] - m);
        double* o = out->data() + ((b * pr.tq + i) * pr.hq + h) * pr.dh;
        for (int64_t j = 0; j < pr.tk; ++j) {
          const double p = std::exp(s[j] - m) / z;
          if (p == 0.0) continue;
          const double* vj = v.data() + ((b * pr.tk + j) * pr.hkv + g) * pr.dh;
          for (int64_t c = 0; c < pr.dh; ++c) o[c] += p * vj[c];
        }
        (*lse)[(b * pr.hq + h) * pr.tq + i] = m + std::log(z);
      }
    }
  }
}

std::vector<double> to_double(const Tensor& t) {
  std::vector<float> f = t.to_vector<float>();
  return {f.begin(), f.end()};
}

// Random q, k, v; keys at or past kv_len hold NaN, so reading them would poison the results.
struct Inputs {
  Tensor q, k, v;
};
Inputs make_inputs(const Problem& pr, uint64_t seed) {
  Inputs in{random_tensor(pr.q_shape(), seed, -1.5f, 1.5f),
            random_tensor(pr.k_shape(), seed + 1, -1.5f, 1.5f),
            random_tensor(pr.k_shape(), seed + 2)};
  for (Tensor* t : {&in.k, &in.v}) {
    float* p = t->data<float>();
    for (int64_t b = 0; b < pr.b; ++b) {
      for (int64_t j = pr.valid(); j < pr.tk; ++j) {
        std::fill_n(p + (b * pr.tk + j) * pr.hkv * pr.dh, pr.hkv * pr.dh, kNaN);
      }
    }
  }
  return in;
}

void expect_near_all(const Tensor& got, const std::vector<double>& want, double tol,
                     const std::string& what) {
  std::vector<float> g = got.to_vector<float>();
  ASSERT_EQ(g.size(), want.size()) << what;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isinf(want[i])) {
      EXPECT_EQ(g[i], want[i]) << what << "[" << i << "]";
    } else {
      EXPECT_NEAR(g[i], want[i], tol * (1.0 + std::fabs(want[i]))) << what << "[" << i << "]";
    }
  }
}

// Runs the forward pass and compares it with the reference; returns {out, lse}.
std::pair<Tensor, Tensor> check_forward(const Problem& pr, const Inputs& in) {
  Tensor out = Tensor::empty(pr.q_shape(), DType::f32);
  Tensor lse = Tensor::empty({pr.b, pr.hq, pr.tq}, DType::f32);
  cpu().attention(in.q, in.k, in.v, pr.segment_tensor(), pr.kv_len, pr.window, pr.the_scale(), out,
                  lse);
  std::vector<double> want_out, want_lse;
  attention_ref(pr, to_double(in.q), to_double(in.k), to_double(in.v), &want_out, &want_lse);
  expect_near_all(out, want_out, 1e-6, "out");
  expect_near_all(lse, want_lse, 1e-6, "lse");
  return {out, lse};
}

// Runs the backward pass and compares it with central differences of the reference forward
// for the loss L = Σ out ⊙ dout. Keys at or past kv_len must get exactly 0.
void check_backward(const Problem& pr, const Inputs& in, uint64_t seed) {
  auto [out, lse] = check_forward(pr, in);
  Tensor dout = random_tensor(pr.q_shape(), seed);
  Tensor dq = Tensor::empty(pr.q_shape(), DType::f32);
  Tensor dk = Tensor::empty(pr.k_shape(), DType::f32), dv = Tensor::empty(pr.k_shape(), DType::f32);
  for (const Tensor& t : {dq, dk, dv}) std::fill_n(t.data<float>(), t.numel(), kNaN);
  cpu().attention_backward(in.q, in.k, in.v, pr.segment_tensor(), pr.kv_len, pr.window,
                           pr.the_scale(), out, lse, dout, dq, dk, dv);

  std::vector<double> q = to_double(in.q), k = to_double(in.k), v = to_double(in.v);
  // The reference must not see NaN keys: zero them (they are masked out anyway).
  for (auto* x : {&k, &v}) {
    for (double& e : *x)
      if (std::isnan(e)) e = 0.0;
  }
  const std::vector<double> w = to_double(dout);
  auto loss = [&] {
    std::vector<double> o, l;
    attention_ref(pr, q, k, v, &o, &l);
    double s = 0.0;
    for (size_t i = 0; i < o.size(); ++i) s += o[i] * w[i];
    return s;
  };
  auto gradient = [&](std::vector<double>* x) {
    std::vector<double> g(x->size());
    const double h = 1e-6;
    for (size_t i = 0; i < x->size(); ++i) {
      const double saved = (*x)[i];
      (*x)[i] = saved + h;
      const double up = loss();
      (*x)[i] = saved - h;
      const double down = loss();
      (*x)[i] = saved;
      g[i] = (up - down) / (2 * h);
    }
    return g;
  };
  expect_near_all(dq, gradient(&q), 1e-5, "dq");
  expect_near_all(dk, gradient(&k), 1e-5, "dk");
  expect_near_all(dv, gradient(&v), 1e-5, "dv");
  // Keys at or past kv_len: exactly 0 (the NaN the outputs were filled with is overwritten).
  for (int64_t i = 0; i < dk.numel(); ++i) {
    const int64_t key = (i / (pr.hkv * pr.dh)) % pr.tk;
    if (key < pr.valid()) continue;
    ASSERT_EQ(dk.data<float>()[i], 0.0f) << i;
    ASSERT_EQ(dv.data<float>()[i], 0.0f) << i;
  }
}

TEST(CpuAttention, OneKeyReturnsItsValue) {
  // A single allowed key has probability 1: out = v, lse = scale·q·k.
  Problem pr{1, 1, 1, 2, 1, 8};
  Inputs in = make_inputs(pr, 1);
  auto [out, lse] = check_forward(pr, in);
  for (int64_t h = 0; h < 2; ++h) {
    double qk = 0.0;
    for (int64_t c = 0; c < 8; ++c) {
      EXPECT_FLOAT_EQ(out.data<float>()[h * 8 + c], in.v.data<float>()[c]);
      qk += static_cast<double>(in.q.data<float>()[h * 8 + c]) * in.k.data<float>()[c];
    }
    EXPECT_NEAR(lse.data<float>()[h], pr.the_scale() * qk, 1e-6);
  }
}

TEST(CpuAttention, EqualScoresAverageTheValues) {
  // q = 0: every allowed key scores 0, so query i averages v over keys 0..i and lse = ln(i+1).
  Problem pr{1, 5, 5, 1, 1, 3};
  Inputs in = make_inputs(pr, 2);
  std::fill_n(in.q.data<float>(), in.q.numel(), 0.0f);
  auto [out, lse] = check_forward(pr, in);
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_NEAR(lse.data<float>()[i], std::log(i + 1.0), 1e-6);
    for (int64_t c = 0; c < 3; ++c) {
      double mean = 0.0;
      for (int64_t j = 0; j <= i; ++j) mean += in.v.data<float>()[j * 3 + c];
      EXPECT_NEAR(out.data<float>()[i * 3 + c], mean / (i + 1.0), 1e-6);
    }
  }
}

TEST(CpuAttention, CausalGroupedQueryHeads) {
  Problem pr{2, 7, 7, 6, 2, 8};
  check_backward(pr, make_inputs(pr, 3), 4);
}

TEST(CpuAttention, MultiHeadAndMultiQueryExtremes) {
  Problem mha{1, 5, 5, 3, 3, 4};  // one kv head per query head
  check_backward(mha, make_inputs(mha, 5), 6);
  Problem mqa{2, 4, 4, 4, 1, 6};  // one kv head for all
  mqa.scale = 0.7f;
  check_backward(mqa, make_inputs(mqa, 7), 8);
}

TEST(CpuAttention, SegmentsForPaddingAndPacking) {
  // Entry 0: left padding (pads have their own id -1), then one example. Entry 1: two packed
  // examples and a trailing pad.
  Problem pr{2, 7, 7, 6, 2, 8};
  pr.segments = {-1, -1, 0, 0, 0, 0, 0,  //
                 0,  0,  0, 1, 1, 1, -1};
  Inputs in = make_inputs(pr, 9);
  check_backward(pr, in, 10);
  // With packing, the first token of the second example attends only itself: out = its v.
  auto [out, lse] = check_forward(pr, in);
  for (int64_t h = 0; h < 6; ++h) {
    for (int64_t c = 0; c < 8; ++c) {
      const int64_t g = h / 3;
      EXPECT_FLOAT_EQ(out.data<float>()[((1 * 7 + 3) * 6 + h) * 8 + c],
                      in.v.data<float>()[((1 * 7 + 3) * 2 + g) * 8 + c]);
    }
  }
}

TEST(CpuAttention, KvCacheDecodeAttendsOnlyValidKeys) {
  // One new query against a cache of Tk = 9 slots of which 5 hold keys: it sits at position 4
  // and attends keys 0..4. The NaN slots 5..8 must never be read; their gradients are 0.
  Problem pr{2, 1, 9, 6, 2, 8};
  pr.kv_len = 5;
  check_backward(pr, make_inputs(pr, 11), 12);
}

TEST(CpuAttention, ChunkedPrefillIntoACacheWithSegments) {
  // Tq = 3 queries at positions 3..5 of a 6-key prefix in an 8-slot cache.
  Problem pr{2, 3, 8, 4, 2, 6};
  pr.kv_len = 6;
  pr.segments = {0,  0, 0, 0, 0, 0, 7, 7,  //
                 -1, 0, 0, 1, 1, 1, 7, 7};
  check_backward(pr, make_inputs(pr, 13), 14);
}

TEST(CpuAttention, QueriesBeforeTheFirstKeyGetZeroAndMinusInfinity) {
  // Tq = 4 > kv_len = 2: queries 0 and 1 sit at positions -2 and -1 and have no key.
  Problem pr{1, 4, 3, 2, 1, 4};
  pr.kv_len = 2;
  Inputs in = make_inputs(pr, 15);
  auto [out, lse] = check_forward(pr, in);
  for (int64_t h = 0; h < 2; ++h) {
    EXPECT_EQ(lse.data<float>()[h * 4 + 0], -kInf);
    EXPECT_EQ(lse.data<float>()[h * 4 + 1], -kInf);
    EXPECT_TRUE(std::isfinite(lse.data<float>()[h * 4 + 2]));
  }
  for (int64_t i = 0; i < 2 * 2 * 4; ++i) EXPECT_EQ(out.data<float>()[i], 0.0f);
  check_backward(pr, in, 16);  // dq of those queries is 0 (and not NaN)

  // kv_len = 0: nothing at all to attend.
  pr.kv_len = 0;
  Inputs empty = make_inputs(pr, 17);
  check_backward(pr, empty, 18);
}

TEST(CpuAttention, LargeScoresAreStable) {
  // Scores of order ±1000 overflow a naive exp; max subtraction keeps them finite.
  Problem pr{1, 4, 4, 2, 2, 4};
  pr.scale = 500.0f;
  Inputs in = make_inputs(pr, 19);
  auto [out, lse] = check_forward(pr, in);
  for (float x : out.to_vector<float>()) EXPECT_TRUE(std::isfinite(x));
  for (float x : lse.to_vector<float>()) EXPECT_TRUE(std::isfinite(x));
}

TEST(CpuAttention, BackwardIsBitwiseIndependentOfThreadCount) {
  Problem pr{2, 33, 40, 8, 2, 16};
  pr.kv_len = 37;
  Inputs in = make_inputs(pr, 20);
  Tensor dout = random_tensor(pr.q_shape(), 21);
  auto run = [&](int threads) {
    ScopedThreads scoped(threads);
    Tensor out = Tensor::empty(pr.q_shape(), DType::f32);
    Tensor lse = Tensor::empty({pr.b, pr.hq, pr.tq}, DType::f32);
    cpu().attention(in.q, in.k, in.v, Tensor(), pr.kv_len, pr.window, pr.the_scale(), out, lse);
    Tensor dq = Tensor::empty(pr.q_shape(), DType::f32);
    Tensor dk = Tensor::empty(pr.k_shape(), DType::f32);
    Tensor dv = Tensor::empty(pr.k_shape(), DType::f32);
    cpu().attention_backward(in.q, in.k, in.v, Tensor(), pr.kv_len, pr.window, pr.the_scale(), out,
                             lse, dout, dq, dk, dv);
    std::vector<float> all;
    for (const Tensor& t : {out, lse, dq, dk, dv}) {
      std::vector<float> part = t.to_vector<float>();
      all.insert(all.end(), part.begin(), part.end());
    }
    return all;
  };
  std::vector<float> one = run(1), three = run(3);
  ASSERT_EQ(one.size(), three.size());
  EXPECT_EQ(0, std::memcmp(one.data(), three.data(), one.size() * sizeof(float)));
}

// The gradients of backend.h's formulas in double, from the double forward (out, lse):
// P = exp(s - lse), Δ = Σ dout·out, dv = Pᵀ dout, dS = P ⊙ (dout vᵀ - Δ), dq = scale·dS k,
// dk = scale·dSᵀ q. Cheaper than finite differences, so it can check problems that span
// several of the kernel's query blocks.
void attention_backward_ref(const Problem& pr, const std::vector<double>& q,
                            const std::vector<double>& k, const std::vector<double>& v,
                            const std::vector<double>& dout, std::vector<double>* dq,
                            std::vector<double>* dk, std::vector<double>* dv) {
  std::vector<double> out, lse;
  attention_ref(pr, q, k, v, &out, &lse);
  const int64_t group = pr.hq / pr.hkv;
  const double scale = pr.the_scale();
  dq->assign(q.size(), 0.0);
  dk->assign(k.size(), 0.0);
  dv->assign(v.size(), 0.0);
  for (int64_t b = 0; b < pr.b; ++b) {
    for (int64_t h = 0; h < pr.hq; ++h) {
      const int64_t g = h / group;
      for (int64_t i = 0; i < pr.tq; ++i) {
        const int64_t row = ((b * pr.tq + i) * pr.hq + h) * pr.dh;
        double delta = 0.0;
        for (int64_t c = 0; c < pr.dh; ++c) delta += dout[row + c] * out[row + c];
        for (int64_t j = 0; j < pr.tk; ++j) {
          if (!pr.allowed(b, i, j)) continue;
          const int64_t key = ((b * pr.tk + j) * pr.hkv + g) * pr.dh;
          double s = 0.0, dp = 0.0;
          for (int64_t c = 0; c < pr.dh; ++c) {
            s += q[row + c] * k[key + c];
            dp += dout[row + c] * v[key + c];
          }
          const double p = std::exp(scale * s - lse[(b * pr.hq + h) * pr.tq + i]);
          const double ds = p * (dp - delta);
          for (int64_t c = 0; c < pr.dh; ++c) {
            (*dv)[key + c] += p * dout[row + c];
            (*dq)[row + c] += scale * ds * k[key + c];
            (*dk)[key + c] += scale * ds * q[row + c];
          }
        }
      }
    }
  }
}

// Forward and backward against the double references, for problems larger than one block.
void check_large(const Problem& pr, uint64_t seed) {
  Inputs in = make_inputs(pr, seed);
  auto [out, lse] = check_forward(pr, in);
  Tensor dout = random_tensor(pr.q_shape(), seed + 3);
  Tensor dq = Tensor::empty(pr.q_shape(), DType::f32);
  Tensor dk = Tensor::empty(pr.k_shape(), DType::f32), dv = Tensor::empty(pr.k_shape(), DType::f32);
  for (const Tensor& t : {dq, dk, dv}) std::fill_n(t.data<float>(), t.numel(), kNaN);
  cpu().attention_backward(in.q, in.k, in.v, pr.segment_tensor(), pr.kv_len, pr.window,
                           pr.the_scale(), out, lse, dout, dq, dk, dv);
  std::vector<double> k = to_double(in.k), v = to_double(in.v);
  for (auto* x : {&k, &v}) {
    for (double& e : *x)
      if (std::isnan(e)) e = 0.0;  // masked: the reference never uses them either
  }
  std::vector<double> want_dq, want_dk, want_dv;
  attention_backward_ref(pr, to_double(in.q), k, v, to_double(dout), &want_dq, &want_dk, &want_dv);
  expect_near_all(dq, want_dq, 1e-5, "dq");
  expect_near_all(dk, want_dk, 1e-5, "dk");  // exactly 0 past kv_len: want is 0 there
  expect_near_all(dv, want_dv, 1e-5, "dv");
}

TEST(CpuAttention, ManyQueryBlocksMatchTheReference) {
  // Tq = 150 spans several query blocks of the kernel, the last one partial.
  Problem causal{2, 150, 150, 4, 2, 8};
  check_large(causal, 30);
  // A partly filled cache with packed segments: 130 queries at positions 10..139 of 140 keys.
  Problem cache{2, 130, 160, 4, 1, 8};
  cache.kv_len = 140;
  cache.segments.resize(2 * 160);
  for (int64_t j = 0; j < 160; ++j) {
    cache.segments[j] = j < 3 ? -1 : 0;                        // left padding
    cache.segments[160 + j] = j < 45 ? 0 : (j < 100 ? 1 : 2);  // three packed examples
  }
  check_large(cache, 31);
  // Ids that recur: query positions in id 0 attend the keys of all three runs of id 0 before
  // them, and the trailing pads (-1) attend the leading ones.
  Problem recurring{1, 150, 150, 2, 1, 8};
  recurring.segments.resize(150);
  for (int64_t j = 0; j < 150; ++j) {
    recurring.segments[j] = j < 5 || j >= 140 ? -1 : static_cast<int32_t>((j / 20) % 3);
  }
  check_large(recurring, 35);
  // More queries than keys: the first 3 have none, and blocks start after them.
  Problem early{1, 70, 80, 2, 2, 4};
  early.kv_len = 67;
  check_large(early, 32);
}

TEST(CpuAttention, SlidingWindowAttendsTheLastKeysOnly) {
  // q = 0 makes every allowed key score 0: query i averages v over keys max(0, i - 2)..i, so
  // lse = ln(min(i + 1, 3)).
  Problem pr{1, 6, 6, 1, 1, 2};
  pr.window = 3;
  Inputs in = make_inputs(pr, 40);
  std::fill_n(in.q.data<float>(), in.q.numel(), 0.0f);
  auto [out, lse] = check_forward(pr, in);
  for (int64_t i = 0; i < 6; ++i) {
    const int64_t first = std::max<int64_t>(0, i - 2);
    EXPECT_NEAR(lse.data<float>()[i], std::log(static_cast<double>(i - first + 1)), 1e-6);
    for (int64_t c = 0; c < 2; ++c) {
      double mean = 0.0;
      for (int64_t j = first; j <= i; ++j) mean += in.v.data<float>()[j * 2 + c];
      EXPECT_NEAR(out.data<float>()[i * 2 + c], mean / static_cast<double>(i - first + 1), 1e-6);
    }
  }
  // Window 1: each query attends itself only.
  pr.window = 1;
  auto [self, self_lse] = check_forward(pr, in);
  for (int64_t i = 0; i < 12; ++i) EXPECT_FLOAT_EQ(self.data<float>()[i], in.v.data<float>()[i]);
}

TEST(CpuAttention, SlidingWindowGradients) {
  // With grouped-query heads and segments (left padding, packing), and in a partly filled cache
  // (the window counts key positions, so a decoding query sees the window before it).
  Problem pr{2, 7, 7, 6, 2, 8};
  pr.window = 3;
  pr.segments = {-1, -1, 0, 0, 0, 0, 0,  //
                 0,  0,  0, 1, 1, 1, -1};
  check_backward(pr, make_inputs(pr, 41), 42);
  Problem decode{2, 2, 9, 4, 2, 8};
  decode.kv_len = 7;
  decode.window = 4;
  check_backward(decode, make_inputs(decode, 43), 44);
  // A window at least as long as the keys masks nothing: the result is the unwindowed one.
  Problem wide{1, 5, 5, 2, 1, 4};
  Inputs in = make_inputs(wide, 45);
  auto [full, full_lse] = check_forward(wide, in);
  wide.window = 5;
  auto [windowed, windowed_lse] = check_forward(wide, in);
  EXPECT_EQ(full.to_vector<float>(), windowed.to_vector<float>());
}

TEST(CpuAttention, SlidingWindowOverManyQueryBlocks) {
  // Windows shorter and longer than the kernel's query block, with recurring segment ids and a
  // partly filled cache; blocks skip the keys behind every row's window.
  Problem narrow{2, 150, 150, 4, 2, 8};
  narrow.window = 20;
  check_large(narrow, 46);
  Problem cache{1, 130, 160, 4, 1, 8};
  cache.kv_len = 140;
  cache.window = 90;
  cache.segments.resize(160);
  for (int64_t j = 0; j < 160; ++j) {
    cache.segments[j] = j < 3 ? -1 : static_cast<int32_t>((j / 30) % 2);
  }
  check_large(cache, 47);
}

TEST(CpuAttention, ManyBlocksAreBitwiseIndependentOfThreadCount) {
  Problem pr{3, 140, 150, 6, 3, 16};
  pr.kv_len = 145;
  pr.segments.resize(3 * 150);
  for (int64_t i = 0; i < 3 * 150; ++i) pr.segments[i] = static_cast<int32_t>((i % 150) / 40);
  Inputs in = make_inputs(pr, 33);
  Tensor dout = random_tensor(pr.q_shape(), 34);
  auto run = [&](int threads) {
    ScopedThreads scoped(threads);
    Tensor out = Tensor::empty(pr.q_shape(), DType::f32);
    Tensor lse = Tensor::empty({pr.b, pr.hq, pr.tq}, DType::f32);
    cpu().attention(in.q, in.k, in.v, pr.segment_tensor(), pr.kv_len, pr.window, pr.the_scale(),
                    out, lse);
    Tensor dq = Tensor::empty(pr.q_shape(), DType::f32);
    Tensor dk = Tensor::empty(pr.k_shape(), DType::f32);
    Tensor dv = Tensor::empty(pr.k_shape(), DType::f32);
    cpu().attention_backward(in.q, in.k, in.v, pr.segment_tensor(), pr.kv_len, pr.window,
                             pr.the_scale(), out, lse, dout, dq, dk, dv);
    std::vector<float> all;
    for (const Tensor& t : {out, lse, dq, dk, dv}) {
      std::vector<float> part = t.to_vector<float>();
      all.insert(all.end(), part.begin(), part.end());
    }
    return all;
  };
  const std::vector<float> one = run(1);
  for (int threads : {2, 3}) {
    const std::vector<float> other = run(threads);
    ASSERT_EQ(one.size(), other.size());
    EXPECT_EQ(0, std::memcmp(one.data(), other.data(), one.size() * sizeof(float))) << threads;
  }
}

TEST(CpuAttention, BadArgumentsAreErrors) {
  const Shape qs = {1, 3, 4, 8}, ks = {1, 5, 2, 8};
  Tensor q = random_tensor(qs, 22), k = random_tensor(ks, 23), v = random_tensor(ks, 24);
  Tensor out = Tensor::empty(qs, DType::f32), lse = Tensor::empty({1, 4, 3}, DType::f32);
  auto f32 = [](const Shape& s) { return Tensor::empty(s, DType::f32); };
  auto forward = [&](const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor& seg,
                     int64_t kv_len, const Tensor& out_, const Tensor& lse_) {
    cpu().attention(q_, k_, v_, seg, kv_len, 0, 0.35f, out_, lse_);
  };
  EXPECT_NO_THROW(forward(q, k, v, Tensor(), -1, out, lse));
  // Query heads not a multiple of the kv heads; head sizes or batches that differ; v unlike k.
  EXPECT_THROW(forward(q, f32({1, 5, 3, 8}), f32({1, 5, 3, 8}), Tensor(), -1, out, lse), Error);
  EXPECT_THROW(forward(q, f32({1, 5, 2, 6}), f32({1, 5, 2, 6}), Tensor(), -1, out, lse), Error);
  EXPECT_THROW(forward(q, f32({2, 5, 2, 8}), f32({2, 5, 2, 8}), Tensor(), -1, out, lse), Error);
  EXPECT_THROW(forward(q, k, f32({1, 4, 2, 8}), Tensor(), -1, out, lse), Error);
  EXPECT_THROW(forward(q.reshape({3, 4, 8}), k, v, Tensor(), -1, out, lse), Error);
  // kv_len beyond Tk or below -1; a negative window.
  EXPECT_THROW(cpu().attention(q, k, v, Tensor(), -1, -1, 0.35f, out, lse), Error);
  EXPECT_THROW(forward(q, k, v, Tensor(), 6, out, lse), Error);
  EXPECT_THROW(forward(q, k, v, Tensor(), -2, out, lse), Error);
  // Outputs of the wrong shape; lse in the [B, Tq, Hq] layout; segment ids wrong.
  EXPECT_THROW(forward(q, k, v, Tensor(), -1, f32({1, 3, 4, 7}), lse), Error);
  EXPECT_THROW(forward(q, k, v, Tensor(), -1, out, f32({1, 3, 4})), Error);
  EXPECT_THROW(forward(q, k, v, Tensor::zeros({1, 3}, DType::i32), -1, out, lse), Error);
  EXPECT_THROW(forward(q, k, v, Tensor::zeros({1, 5}, DType::f32), -1, out, lse), Error);
  EXPECT_THROW(forward(Tensor::empty(qs, DType::bf16), k, v, Tensor(), -1, out, lse), Error);
  // Backward: gradients shaped like the wrong tensor.
  EXPECT_THROW(
      cpu().attention_backward(q, k, v, Tensor(), -1, 0, 0.35f, out, lse, out, out, out, v), Error);
  EXPECT_THROW(cpu().attention_backward(q, k, v, Tensor(), -1, 0, 0.35f, out, lse, out, k, k, v),
               Error);
  EXPECT_THROW(cpu().attention_backward(q, k, v, Tensor(), -1, 0, 0.35f, out, lse, f32({1, 3, 4}),
                                        out, k, v),
               Error);
}

}  // namespace
}  // namespace rlaif
