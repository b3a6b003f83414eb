// Gradchecks of the transformer building blocks and the vocabulary losses.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "tests/autograd/test_util.h"

namespace rlaif {
namespace {

using test::expect_gradcheck;
using test::i32;
using test::param;
using test::uniform;

TEST(OpsNN, EmbeddingWithRepeatedIds) {
  Variable w = param(uniform({11, 6}, 2000), "wte");
  // Id 3 three times, id 1 three times: their rows must sum the gradients of every use.
  Tensor ids = i32({3, 1, 3, 0, 10, 3, 5, 1, 1, 7}, {2, 5});
  Variable out = embedding(w, ids);
  EXPECT_EQ(out.shape(), (Shape{2, 5, 6}));
  expect_gradcheck([ids](const std::vector<Variable>& v) { return embedding(v[0], ids); }, {w});
  Tensor ids_odd = i32({4, 4, 4, 2, 9, 0, 4}, {7});
  Variable w2 = param(uniform({10, 5}, 2001));
  expect_gradcheck([ids_odd](const std::vector<Variable>& v) { return embedding(v[0], ids_odd); },
                   {w2});
}

// A leaf weight whose .grad already holds a gradient takes the embedding's in place (the tied
// LM head's case, and a second use or micro-batch). The result must be the bits of the engine's
// own adds, which a non-leaf weight (w·1, exact) still gets, and pass the finite-difference check.
TEST(OpsNN, EmbeddingAddsIntoAnExistingGradientAsTheEngineWould) {
  const Tensor init = uniform({11, 6}, 2002);
  const Tensor ids_a = i32({3, 1, 3, 0, 10, 3, 5}, {7}), ids_b = i32({1, 1, 4, 3}, {4});
  const Tensor weights = uniform({7, 11}, 2003);
  // Two lookups and a tied head: whichever runs second adds into the gradient (twice over).
  auto loss = [&](const Variable& w) {
    Variable h = embedding(w, ids_a);
    Variable logits = matmul(h, w, false, true);  // [7, 11], the head tied to w
    Variable extra = sum_all(mul(embedding(w, ids_b), embedding(w, ids_b)));
    return add(sum_all(mul(logits, Variable(weights))), extra);
  };
  Variable leaf = param(init.clone(), "wte");
  loss(leaf).backward();
  Variable base = param(init.clone(), "wte_base");
  loss(scale(base, 1.0f)).backward();  // not a leaf: every contribution goes through the engine
  ASSERT_TRUE(leaf.grad().defined());
  EXPECT_EQ(test::values(leaf.grad()), test::values(base.grad()));
  // A second backward without zero_grad accumulates (micro-batches): the leaf adds each term into
  // its gradient in turn, the non-leaf sums the terms first, so only the rounding differs.
  loss(leaf).backward();
  loss(scale(base, 1.0f)).backward();
  const std::vector<float> twice = test::values(leaf.grad()), want = test::values(base.grad());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(twice[i], want[i], 1e-5 * (1.0 + std::fabs(want[i]))) << "element " << i;
  }
  expect_gradcheck([&](const std::vector<Variable>& v) { return loss(v[0]); },
                   {param(init.clone(), "wte_check")});
}

TEST(OpsNN, LayerNorm) {
  uint64_t seed = 2100;
  for (const Shape& shape : {Shape{3, 7}, Shape{2, 5, 13}}) {
    SCOPED_TRACE(shape_str(shape));
    int64_t d = shape.back();
    Variable x = param(uniform(shape, seed++, -2.0f, 2.0f), "x");
    Variable gamma = param(uniform({d}, seed++, 0.5f, 1.5f), "gamma");
    Variable beta = param(uniform({d}, seed++), "beta");
    expect_gradcheck(
        [](const std::vector<Variable>& v) { return layernorm(v[0], v[1], v[2], 1e-5f); },
        {x, gamma, beta});
    // Without a bias.
    expect_gradcheck(
        [](const std::vector<Variable>& v) { return layernorm(v[0], v[1], Variable(), 1e-5f); },
        {x, gamma});
  }
}

TEST(OpsNN, RmsNorm) {
  uint64_t seed = 2200;
  for (const Shape& shape : {Shape{3, 7}, Shape{2, 5, 13}}) {
    SCOPED_TRACE(shape_str(shape));
    Variable x = param(uniform(shape, seed++, -2.0f, 2.0f), "x");
    Variable gamma = param(uniform({shape.back()}, seed++, 0.5f, 1.5f), "gamma");
    expect_gradcheck([](const std::vector<Variable>& v) { return rmsnorm(v[0], v[1], 1e-6f); },
                     {x, gamma});
  }
}

TEST(OpsNN, SwiGLU) {
  uint64_t seed = 2300;
  for (const Shape& shape : {Shape{3, 7}, Shape{2, 5, 13}}) {
    SCOPED_TRACE(shape_str(shape));
    Variable gate = param(uniform(shape, seed++, -2.0f, 2.0f)), up = param(uniform(shape, seed++));
    expect_gradcheck([](const std::vector<Variable>& v) { return swiglu(v[0], v[1]); }, {gate, up});
  }
}

TEST(OpsNN, Rope) {
  {
    Tensor positions = i32({0, 1, 2, 3, 4, 7, 8, 9, 10, 11}, {2, 5});
    Variable x = param(uniform({2, 5, 3, 8}, 2400));
    expect_gradcheck(
        [positions](const std::vector<Variable>& v) { return rope(v[0], positions, 10000.0f); },
        {x});
  }
  {
    Tensor positions = i32({0, 1, 2, 3, 4, 5, 6}, {1, 7});
    Variable x = param(uniform({1, 7, 2, 6}, 2401));
    expect_gradcheck(
        [positions](const std::vector<Variable>& v) { return rope(v[0], positions, 500.0f); }, {x});
  }
}

struct AttentionCase {
  std::string name;
  int64_t b, t, hq, hkv, dh;
  std::vector<int32_t> segments;  // empty: no segment ids
  int64_t window = 0;             // sliding window, 0 = none
};

TEST(OpsNN, Attention) {
  const std::vector<AttentionCase> cases = {
      {"gqa", 2, 5, 4, 2, 8, {}},
      // Row 0 right-padded (the pads form their own segment), row 1 two packed examples.
      {"gqa_padded", 2, 5, 4, 2, 8, {0, 0, 0, 1, 1, 0, 0, 2, 2, 2}},
      {"mha_odd", 1, 7, 3, 3, 6, {}},
      {"mqa_odd", 1, 7, 3, 1, 4, {5, 5, 5, 5, 5, 9, 9}},
      {"gqa_window", 2, 7, 4, 2, 8, {}, 3},
      {"gqa_padded_window", 2, 5, 4, 2, 8, {0, 0, 0, 1, 1, 0, 0, 2, 2, 2}, 2},
  };
  uint64_t seed = 2500;
  for (const AttentionCase& c : cases) {
    SCOPED_TRACE(c.name);
    Variable q = param(uniform({c.b, c.t, c.hq, c.dh}, seed++), "q");
    Variable k = param(uniform({c.b, c.t, c.hkv, c.dh}, seed++), "k");
    Variable v = param(uniform({c.b, c.t, c.hkv, c.dh}, seed++), "v");
    Tensor seg = c.segments.empty() ? Tensor() : i32(c.segments, {c.b, c.t});
    float scale = 1.0f / std::sqrt(static_cast<float>(c.dh));
    expect_gradcheck(
        [seg, scale, window = c.window](const std::vector<Variable>& in) {
          return attention(in[0], in[1], in[2], seg, window, scale);
        },
        {q, k, v});
  }
}

TEST(OpsNN, CrossEntropyWithIgnoredTarget) {
  {
    Variable logits = param(uniform({6, 11}, 2600, -2.0f, 2.0f), "logits");
    Tensor targets = i32({3, -100, 0, 10, 3, 7}, {6});
    Variable losses = cross_entropy(logits, targets);
    EXPECT_EQ(losses.shape(), (Shape{6}));
    EXPECT_EQ(losses.data().to_vector<float>()[1], 0.0f);
    expect_gradcheck(
        [targets](const std::vector<Variable>& v) { return cross_entropy(v[0], targets); },
        {logits});
    // The ignored row gets exactly no gradient.
    sum_all(cross_entropy(logits, targets)).backward();
    std::vector<float> g = logits.grad().to_vector<float>();
    for (int64_t j = 0; j < 11; ++j) EXPECT_EQ(g[static_cast<size_t>(11 + j)], 0.0f);
  }
  {
    // Leading dimensions: logits [2, 3, 7], targets [2, 3], custom ignore index.
    Variable logits = param(uniform({2, 3, 7}, 2601, -2.0f, 2.0f));
    Tensor targets = i32({1, 6, 0, 5, 5, 2}, {2, 3});
    Variable losses = cross_entropy(logits, targets, 5);
    EXPECT_EQ(losses.shape(), (Shape{2, 3}));
    expect_gradcheck(
        [targets](const std::vector<Variable>& v) { return cross_entropy(v[0], targets, 5); },
        {logits});
  }
}

TEST(OpsNN, GatherLogprobs) {
  {
    Variable logits = param(uniform({6, 11}, 2700, -2.0f, 2.0f));
    Tensor targets = i32({3, 3, 0, 10, 4, 7}, {6});
    expect_gradcheck(
        [targets](const std::vector<Variable>& v) { return gather_logprobs(v[0], targets); },
        {logits});
  }
  {
    Variable logits = param(uniform({2, 3, 7}, 2701, -2.0f, 2.0f));
    Tensor targets = i32({1, 6, 0, 5, 5, 2}, {2, 3});
    Variable logp = gather_logprobs(logits, targets);
    EXPECT_EQ(logp.shape(), (Shape{2, 3}));
    expect_gradcheck(
        [targets](const std::vector<Variable>& v) { return gather_logprobs(v[0], targets); },
        {logits});
  }
}

}  // namespace
}  // namespace rlaif
