// Conformance of the neural-network primitives (embedding, normalisation, SwiGLU, RoPE,
// attention, losses): each runs on the backend under test and on the CPU reference with the same
// inputs, over several shapes including odd sizes. Backward passes get their saved tensors
// (statistics, out, lse) from the reference forward so that both sides see identical inputs;
// per-row statistics and loss gradients stay f32 on every backend, as backend.h says.
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "tests/kernels/conformance.h"

namespace rlaif::testing {
namespace {

Tensor host_f32(const Shape& shape) {
  return Tensor::empty(shape, DType::f32);
}

std::string shape_label(const Shape& shape) {
  return shape_str(shape);
}

}  // namespace

TEST_P(Conformance, Embedding) {
  for (auto [vocab, d, ids_shape] : std::vector<std::tuple<int64_t, int64_t, Shape>>{
           {11, 13, {7}}, {50, 64, {2, 9}}, {3, 1, {4, 5}}}) {
    Tensor weight = random_tensor({vocab, d}, 1);
    Tensor ids = random_ids(ids_shape, 2, static_cast<int32_t>(vocab));
    Shape out_shape = ids_shape;
    out_shape.push_back(d);
    Tensor got = empty_on_backend(out_shape, float_dtype());
    backend().embedding(on_backend(weight), on_backend(ids), got);
    Tensor want = host_f32(out_shape);
    reference().embedding(weight, ids, want);
    backend().synchronize();
    expect_matches(got, want, "embedding out " + shape_label(out_shape));
  }
}

TEST_P(Conformance, EmbeddingBackward) {
  // Few ids relative to positions, so rows collect many contributions (and some collect none).
  for (auto [vocab, d, n] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {7, 13, 41}, {100, 32, 57}, {5, 3, 1000}}) {
    Tensor ids = random_ids({n}, 3, static_cast<int32_t>(vocab));
    Tensor dout = random_tensor({n, d}, 4);
    Tensor got = empty_on_backend({vocab, d}, float_dtype());
    backend().embedding_backward(on_backend(ids), on_backend(dout), got);
    Tensor want = host_f32({vocab, d});
    reference().embedding_backward(ids, dout, want);
    backend().synchronize();
    expect_matches(got, want, "embedding dweight " + shape_label({vocab, d}),
                   static_cast<double>(n) / static_cast<double>(vocab));
  }
}

// accumulate: the bits of a separate dweight and binary(add) (how autograd adds a tied
// embedding's gradient to the head's), rows no id points at untouched; and the reference's
// accumulation within tolerance. d = 64 takes the CUDA backend's 16-byte vector path, 13 and 3
// its scalar one; vocabularies far larger than the positions leave most rows alone.
TEST_P(Conformance, EmbeddingBackwardAccumulateIsBackwardThenAdd) {
  for (auto [vocab, d, n] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {7, 13, 41}, {100, 64, 57}, {5, 3, 1000}, {1000, 64, 9}, {300, 13, 0}}) {
    Tensor ids = random_ids({n}, 8, static_cast<int32_t>(vocab));
    Tensor dout = random_tensor({n, d}, 9);
    Tensor start = on_backend(random_tensor({vocab, d}, 10, -3.0f, 3.0f));
    Tensor got = start.clone();
    backend().embedding_backward(on_backend(ids), on_backend(dout), got, /*accumulate=*/true);
    Tensor separate = empty_on_backend({vocab, d}, float_dtype());
    backend().embedding_backward(on_backend(ids), on_backend(dout), separate);
    Tensor added = empty_on_backend({vocab, d}, float_dtype());
    backend().binary(BinaryOp::add, start, separate, added);
    backend().synchronize();
    const std::string what =
        "embedding dweight += " + shape_label({vocab, d}) + ", " + std::to_string(n) + " ids";
    EXPECT_TRUE(same_bits(got, added)) << what << ": differs from embedding_backward + add";

    const Tensor start_host = to_host_f32(start), got_host = to_host_f32(got);
    std::vector<bool> hit(static_cast<size_t>(vocab), false);
    for (int32_t id : ids.to_vector<int32_t>()) hit[static_cast<size_t>(id)] = true;
    for (int64_t v = 0; v < vocab; ++v) {
      if (hit[static_cast<size_t>(v)]) continue;
      for (int64_t j = 0; j < d; ++j) {
        ASSERT_EQ(got_host.data<float>()[v * d + j], start_host.data<float>()[v * d + j])
            << what << ": row " << v << ", which no id points at, changed";
      }
    }
    Tensor want = start_host.clone();
    reference().embedding_backward(ids, dout, want, /*accumulate=*/true);
    expect_matches(got, want, what, 1.0 + static_cast<double>(n) / static_cast<double>(vocab));
  }
}

TEST_P(Conformance, LayerNorm) {
  for (const Shape& shape : std::vector<Shape>{{7, 13}, {2, 5, 64}, {1, 1000}}) {
    const int64_t d = shape.back(), n = shape_numel(shape) / d;
    Tensor x = random_tensor(shape, 5, -2.0f, 3.0f);
    Tensor gamma = random_tensor({d}, 6, 0.5f, 1.5f), beta = random_tensor({d}, 7);
    for (bool with_beta : {true, false}) {
      Tensor got = empty_on_backend(shape, float_dtype());
      Tensor got_mean = empty_on_backend({n}, DType::f32),
             got_rstd = empty_on_backend({n}, DType::f32);
      backend().layernorm(on_backend(x), on_backend(gamma), with_beta ? on_backend(beta) : Tensor(),
                          1e-5f, got, got_mean, got_rstd);
      Tensor want = host_f32(shape), mean = host_f32({n}), rstd = host_f32({n});
      reference().layernorm(x, gamma, with_beta ? beta : Tensor(), 1e-5f, want, mean, rstd);
      backend().synchronize();
      const std::string what = "layernorm " + shape_label(shape);
      expect_matches(got, want, what + " out", 2.0);
      expect_matches(got_mean, mean, what + " mean", 2.0);
      expect_matches(got_rstd, rstd, what + " rstd", 2.0);
    }
  }
}

TEST_P(Conformance, LayerNormBackward) {
  for (const Shape& shape : std::vector<Shape>{{7, 13}, {3, 4, 64}, {300, 5}}) {
    const int64_t d = shape.back(), n = shape_numel(shape) / d;
    Tensor x = random_tensor(shape, 8, -2.0f, 2.0f), dout = random_tensor(shape, 9);
    Tensor gamma = random_tensor({d}, 10, 0.5f, 1.5f);
    Tensor out = host_f32(shape), mean = host_f32({n}), rstd = host_f32({n});
    reference().layernorm(x, gamma, Tensor(), 1e-5f, out, mean, rstd);

    Tensor dx = empty_on_backend(shape, float_dtype());
    Tensor dgamma = empty_on_backend({d}, float_dtype()),
           dbeta = empty_on_backend({d}, float_dtype());
    backend().layernorm_backward(on_backend(x), on_backend(gamma), on_backend(mean, DType::f32),
                                 on_backend(rstd, DType::f32), on_backend(dout), dx, dgamma, dbeta);
    Tensor want_dx = host_f32(shape), want_dgamma = host_f32({d}), want_dbeta = host_f32({d});
    reference().layernorm_backward(x, gamma, mean, rstd, dout, want_dx, want_dgamma, want_dbeta);
    backend().synchronize();
    const std::string what = "layernorm_backward " + shape_label(shape);
    expect_matches(dx, want_dx, what + " dx", 4.0);
    expect_matches(dgamma, want_dgamma, what + " dgamma", 4.0 + static_cast<double>(n) / 16);
    expect_matches(dbeta, want_dbeta, what + " dbeta", 4.0 + static_cast<double>(n) / 16);
  }
}

TEST_P(Conformance, RmsNorm) {
  for (const Shape& shape : std::vector<Shape>{{7, 13}, {2, 3, 64}, {1, 1000}}) {
    const int64_t d = shape.back(), n = shape_numel(shape) / d;
    Tensor x = random_tensor(shape, 11, -2.0f, 3.0f), gamma = random_tensor({d}, 12, 0.5f, 1.5f);
    Tensor got = empty_on_backend(shape, float_dtype()),
           got_rstd = empty_on_backend({n}, DType::f32);
    backend().rmsnorm(on_backend(x), on_backend(gamma), 1e-6f, got, got_rstd);
    Tensor want = host_f32(shape), rstd = host_f32({n});
    reference().rmsnorm(x, gamma, 1e-6f, want, rstd);
    backend().synchronize();
    const std::string what = "rmsnorm " + shape_label(shape);
    expect_matches(got, want, what + " out", 2.0);
    expect_matches(got_rstd, rstd, what + " rstd", 2.0);
  }
}

TEST_P(Conformance, RmsNormBackward) {
  for (const Shape& shape : std::vector<Shape>{{7, 13}, {3, 4, 64}, {300, 5}}) {
    const int64_t d = shape.back(), n = shape_numel(shape) / d;
    Tensor x = random_tensor(shape, 13, -2.0f, 2.0f), dout = random_tensor(shape, 14);
    Tensor gamma = random_tensor({d}, 15, 0.5f, 1.5f);
    Tensor out = host_f32(shape), rstd = host_f32({n});
    reference().rmsnorm(x, gamma, 1e-6f, out, rstd);

    Tensor dx = empty_on_backend(shape, float_dtype()),
           dgamma = empty_on_backend({d}, float_dtype());
    backend().rmsnorm_backward(on_backend(x), on_backend(gamma), on_backend(rstd, DType::f32),
                               on_backend(dout), dx, dgamma);
    Tensor want_dx = host_f32(shape), want_dgamma = host_f32({d});
    reference().rmsnorm_backward(x, gamma, rstd, dout, want_dx, want_dgamma);
    backend().synchronize();
    const std::string what = "rmsnorm_backward " + shape_label(shape);
    expect_matches(dx, want_dx, what + " dx", 4.0);
    expect_matches(dgamma, want_dgamma, what + " dgamma", 4.0 + static_cast<double>(n) / 16);
  }
}

TEST_P(Conformance, Swiglu) {
  for (const Shape& shape : std::vector<Shape>{{13}, {7, 33}, {2, 3, 256}}) {
    Tensor gate = random_tensor(shape, 16, -8.0f, 8.0f), up = random_tensor(shape, 17);
    Tensor got = empty_on_backend(shape, float_dtype());
    backend().swiglu(on_backend(gate), on_backend(up), got);
    Tensor want = host_f32(shape);
    reference().swiglu(gate, up, want);
    backend().synchronize();
    expect_matches(got, want, "swiglu " + shape_label(shape));
  }
}

TEST_P(Conformance, SwigluBackward) {
  for (const Shape& shape : std::vector<Shape>{{13}, {7, 33}, {2, 3, 256}}) {
    Tensor gate = random_tensor(shape, 18, -8.0f, 8.0f), up = random_tensor(shape, 19);
    Tensor dout = random_tensor(shape, 20);
    Tensor dgate = empty_on_backend(shape, float_dtype()),
           dup = empty_on_backend(shape, float_dtype());
    backend().swiglu_backward(on_backend(gate), on_backend(up), on_backend(dout), dgate, dup);
    Tensor want_dgate = host_f32(shape), want_dup = host_f32(shape);
    reference().swiglu_backward(gate, up, dout, want_dgate, want_dup);
    backend().synchronize();
    expect_matches(dgate, want_dgate, "swiglu_backward dgate " + shape_label(shape));
    expect_matches(dup, want_dup, "swiglu_backward dup " + shape_label(shape));
  }
}

TEST_P(Conformance, Rope) {
  struct Case {
    Shape shape;
    int32_t max_pos;
    float theta;
  };
  for (const Case& c : std::vector<Case>{{{2, 7, 3, 8}, 100, 10000.0f},
                                         {{1, 5, 6, 64}, 8192, 500000.0f},
                                         {{3, 1, 2, 2}, 30000, 10000.0f}}) {
    Tensor x = random_tensor(c.shape, 21);
    Tensor positions = random_ids({c.shape[0], c.shape[1]}, 22, c.max_pos);
    for (bool inverse : {false, true}) {
      Tensor got = empty_on_backend(c.shape, float_dtype());
      backend().rope(on_backend(x), on_backend(positions), c.theta, inverse, got);
      Tensor want = host_f32(c.shape);
      reference().rope(x, positions, c.theta, inverse, want);
      backend().synchronize();
      expect_matches(got, want,
                     std::string("rope ") + (inverse ? "inverse " : "") + shape_label(c.shape),
                     2.0);
    }
  }
}

namespace {

// One attention configuration for the conformance cases.
struct AttentionCase {
  int64_t b, tq, tk, hq, hkv, dh;
  int64_t kv_len;  // -1: all keys
  bool segments;   // left-pad entry 0 and pack entry 1 when B ≥ 2
  std::string name;
  int64_t window = 0;  // sliding window, 0 = none
};

std::vector<AttentionCase> attention_cases() {
  return {
      {2, 7, 7, 6, 2, 8, -1, false, "causal gqa odd"},
      {2, 7, 7, 6, 2, 8, -1, true, "segments"},
      {1, 33, 33, 4, 4, 64, -1, false, "mha dh64"},
      {2, 1, 9, 6, 2, 8, 5, false, "decode kv_len<Tk"},
      {2, 3, 8, 4, 1, 16, 6, true, "prefill chunk mqa segments"},
      {1, 4, 3, 2, 1, 4, 2, false, "queries before first key"},
      {1, 6, 6, 2, 1, 4, -1, false, "window covering every key", 6},
      {2, 9, 9, 6, 2, 8, -1, true, "window 3 gqa segments", 3},
      {1, 80, 80, 2, 1, 16, -1, false, "window 20 over blocks", 20},
      {2, 1, 9, 6, 2, 8, 5, false, "decode window 2", 2},
  };
}

// Segment ids for a case: entry 0 starts with two pads (-1), entry 1 packs two examples and ends
// with a pad.
Tensor attention_segments(const AttentionCase& c) {
  if (!c.segments) return Tensor();
  std::vector<int32_t> ids(static_cast<size_t>(c.b * c.tk));
  for (int64_t b = 0; b < c.b; ++b) {
    for (int64_t j = 0; j < c.tk; ++j) {
      int32_t id = 0;
      if (b % 2 == 0)
        id = j < 2 ? -1 : 0;
      else
        id = j == c.tk - 1 ? -1 : (j < c.tk / 2 ? 0 : 1);
      ids[b * c.tk + j] = id;
    }
  }
  return Tensor::from_vector(ids, {c.b, c.tk});
}

// A sliding window is optional for a port (backend.h): a backend without one refuses, naming the
// window, every call whose window masks a key. Runs the call; true when it was refused that way.
template <class Call>
bool refused_window(const AttentionCase& c, Call call) {
  const int64_t keys = c.kv_len == -1 ? c.tk : c.kv_len;
  if (c.window == 0 || c.window >= keys) {
    call();
    return false;
  }
  try {
    call();
    return false;
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("sliding window"), std::string::npos) << e.what();
    return true;
  }
}

}  // namespace

TEST_P(Conformance, Attention) {
  for (const AttentionCase& c : attention_cases()) {
    const Shape qs = {c.b, c.tq, c.hq, c.dh}, ks = {c.b, c.tk, c.hkv, c.dh};
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.dh));
    Tensor q = random_tensor(qs, 23, -2.0f, 2.0f), k = random_tensor(ks, 24, -2.0f, 2.0f);
    Tensor v = random_tensor(ks, 25), seg = attention_segments(c);
    Tensor got = empty_on_backend(qs, float_dtype());
    Tensor got_lse = empty_on_backend({c.b, c.hq, c.tq}, DType::f32);
    if (refused_window(c, [&] {
          backend().attention(on_backend(q), on_backend(k), on_backend(v),
                              seg.defined() ? on_backend(seg) : Tensor(), c.kv_len, c.window, scale,
                              got, got_lse);
        })) {
      continue;
    }
    Tensor want = host_f32(qs), lse = host_f32({c.b, c.hq, c.tq});
    reference().attention(q, k, v, seg, c.kv_len, c.window, scale, want, lse);
    backend().synchronize();
    expect_matches(got, want, "attention out (" + c.name + ")", 4.0);
    expect_matches(got_lse, lse, "attention lse (" + c.name + ")", 4.0);
  }
}

TEST_P(Conformance, AttentionBackward) {
  for (const AttentionCase& c : attention_cases()) {
    const Shape qs = {c.b, c.tq, c.hq, c.dh}, ks = {c.b, c.tk, c.hkv, c.dh};
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.dh));
    Tensor q = random_tensor(qs, 26, -2.0f, 2.0f), k = random_tensor(ks, 27, -2.0f, 2.0f);
    Tensor v = random_tensor(ks, 28), dout = random_tensor(qs, 29), seg = attention_segments(c);
    Tensor out = host_f32(qs), lse = host_f32({c.b, c.hq, c.tq});
    reference().attention(q, k, v, seg, c.kv_len, c.window, scale, out, lse);

    Tensor dq = empty_on_backend(qs, float_dtype());
    Tensor dk = empty_on_backend(ks, float_dtype()), dv = empty_on_backend(ks, float_dtype());
    if (refused_window(c, [&] {
          backend().attention_backward(on_backend(q), on_backend(k), on_backend(v),
                                       seg.defined() ? on_backend(seg) : Tensor(), c.kv_len,
                                       c.window, scale, on_backend(out),
                                       on_backend(lse, DType::f32), on_backend(dout), dq, dk, dv);
        })) {
      continue;
    }
    Tensor want_dq = host_f32(qs), want_dk = host_f32(ks), want_dv = host_f32(ks);
    reference().attention_backward(q, k, v, seg, c.kv_len, c.window, scale, out, lse, dout, want_dq,
                                   want_dk, want_dv);
    backend().synchronize();
    // dk and dv sum over the query heads of a group and over queries.
    const double sums = 4.0 + static_cast<double>(c.tq * (c.hq / c.hkv)) / 8;
    expect_matches(dq, want_dq, "attention dq (" + c.name + ")", 4.0);
    expect_matches(dk, want_dk, "attention dk (" + c.name + ")", sums);
    expect_matches(dv, want_dv, "attention dv (" + c.name + ")", sums);
  }
}

namespace {

// The logits of one loss case.
struct LossCase {
  Shape logits;  // [..., V]
  float spread;  // logits uniform in [-spread, spread)
};

std::vector<LossCase> loss_cases() {
  return {{{7, 13}, 4.0f}, {{2, 5, 1000}, 8.0f}, {{3, 50257}, 20.0f}};
}

Shape rows_of(const Shape& logits) {
  return Shape(logits.begin(), logits.end() - 1);
}

Tensor loss_targets(const Shape& logits, uint64_t seed, bool with_ignored) {
  Tensor t = random_ids(rows_of(logits), seed, static_cast<int32_t>(logits.back()));
  if (with_ignored) t.data<int32_t>()[0] = -100;
  return t;
}

}  // namespace

TEST_P(Conformance, CrossEntropy) {
  for (const LossCase& c : loss_cases()) {
    const Shape rows = rows_of(c.logits);
    Tensor logits = random_tensor(c.logits, 30, -c.spread, c.spread);
    Tensor targets = loss_targets(c.logits, 31, true);
    Tensor got = empty_on_backend(rows, DType::f32), got_lse = empty_on_backend(rows, DType::f32);
    backend().cross_entropy(on_backend(logits), on_backend(targets), -100, got, got_lse);
    Tensor want = host_f32(rows), lse = host_f32(rows);
    reference().cross_entropy(logits, targets, -100, want, lse);
    backend().synchronize();
    const std::string what = "cross_entropy " + shape_label(c.logits);
    expect_matches(got, want, what + " losses", 4.0);
    expect_matches(got_lse, lse, what + " lse", 4.0);
  }
}

TEST_P(Conformance, CrossEntropyBackward) {
  for (const LossCase& c : loss_cases()) {
    const Shape rows = rows_of(c.logits);
    Tensor logits = random_tensor(c.logits, 32, -c.spread, c.spread);
    Tensor targets = loss_targets(c.logits, 33, true);
    Tensor dlosses = random_tensor(rows, 34);
    Tensor losses = host_f32(rows), lse = host_f32(rows);
    reference().cross_entropy(logits, targets, -100, losses, lse);
    Tensor got = empty_on_backend(c.logits, float_dtype());
    backend().cross_entropy_backward(on_backend(logits), on_backend(targets),
                                     on_backend(lse, DType::f32), on_backend(dlosses, DType::f32),
                                     -100, got);
    Tensor want = host_f32(c.logits);
    reference().cross_entropy_backward(logits, targets, lse, dlosses, -100, want);
    backend().synchronize();
    expect_matches(got, want, "cross_entropy_backward " + shape_label(c.logits), 2.0);
  }
}

TEST_P(Conformance, GatherLogprobs) {
  for (const LossCase& c : loss_cases()) {
    const Shape rows = rows_of(c.logits);
    Tensor logits = random_tensor(c.logits, 35, -c.spread, c.spread);
    Tensor targets = loss_targets(c.logits, 36, false);
    Tensor got = empty_on_backend(rows, DType::f32), got_lse = empty_on_backend(rows, DType::f32);
    backend().gather_logprobs(on_backend(logits), on_backend(targets), got, got_lse);
    Tensor want = host_f32(rows), lse = host_f32(rows);
    reference().gather_logprobs(logits, targets, want, lse);
    backend().synchronize();
    const std::string what = "gather_logprobs " + shape_label(c.logits);
    expect_matches(got, want, what + " logp", 4.0);
    expect_matches(got_lse, lse, what + " lse", 4.0);
  }
}

TEST_P(Conformance, GatherLogprobsBackward) {
  for (const LossCase& c : loss_cases()) {
    const Shape rows = rows_of(c.logits);
    Tensor logits = random_tensor(c.logits, 37, -c.spread, c.spread);
    Tensor targets = loss_targets(c.logits, 38, false);
    Tensor dlogp = random_tensor(rows, 39);
    Tensor logp = host_f32(rows), lse = host_f32(rows);
    reference().gather_logprobs(logits, targets, logp, lse);
    Tensor got = empty_on_backend(c.logits, float_dtype());
    backend().gather_logprobs_backward(on_backend(logits), on_backend(targets),
                                       on_backend(lse, DType::f32), on_backend(dlogp, DType::f32),
                                       got);
    Tensor want = host_f32(c.logits);
    reference().gather_logprobs_backward(logits, targets, lse, dlogp, want);
    backend().synchronize();
    expect_matches(got, want, "gather_logprobs_backward " + shape_label(c.logits), 2.0);
  }
}

}  // namespace rlaif::testing
