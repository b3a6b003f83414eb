// Gradchecks of matmul (every transpose combination; 2-D, batched and shared-weight), linear and
// the shape ops.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "autograd/ops.h"
#include "tests/autograd/test_util.h"

namespace rlaif {
namespace {

using test::expect_gradcheck;
using test::param;
using test::uniform;
using test::values;

// [rows, cols], or [cols, rows] when transposed, behind batch dimensions.
Shape operand(const Shape& batch, int64_t rows, int64_t cols, bool transposed) {
  Shape s = batch;
  s.push_back(transposed ? cols : rows);
  s.push_back(transposed ? rows : cols);
  return s;
}

TEST(OpsMatmul, EveryLayoutAndTransposeCombination) {
  const int64_t m = 3, k = 7, n = 5;
  struct Layout {
    std::string name;
    Shape a_batch, b_batch;
  };
  const std::vector<Layout> layouts = {
      {"2d", {}, {}},
      {"batched", {2}, {2}},
      {"batched_4d", {2, 2}, {2, 2}},
      {"shared_b", {2, 3}, {}},  // b 2-D, used by every batch entry: dB sums over the batch
  };
  uint64_t seed = 3000;
  for (const Layout& layout : layouts) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        SCOPED_TRACE(layout.name + " ta=" + std::to_string(ta) + " tb=" + std::to_string(tb));
        Variable a = param(uniform(operand(layout.a_batch, m, k, ta), seed++), "a");
        Variable b = param(uniform(operand(layout.b_batch, k, n, tb), seed++), "b");
        Variable c = matmul(a, b, ta, tb);
        Shape want = layout.a_batch;
        want.push_back(m);
        want.push_back(n);
        EXPECT_EQ(c.shape(), want);
        expect_gradcheck(
            [ta, tb](const std::vector<Variable>& v) { return matmul(v[0], v[1], ta, tb); },
            {a, b});
      }
    }
  }
}

TEST(OpsMatmul, LinearWithAndWithoutBias) {
  uint64_t seed = 3100;
  for (const Shape& x_shape : {Shape{3, 7}, Shape{2, 5, 7}}) {
    SCOPED_TRACE(shape_str(x_shape));
    Variable x = param(uniform(x_shape, seed++), "x");
    Variable w = param(uniform({5, 7}, seed++), "weight");
    Variable bias = param(uniform({5}, seed++), "bias");
    Shape want = x_shape;
    want.back() = 5;
    EXPECT_EQ(linear(x, w, bias).shape(), want);
    expect_gradcheck([](const std::vector<Variable>& v) { return linear(v[0], v[1], v[2]); },
                     {x, w, bias});
    expect_gradcheck([](const std::vector<Variable>& v) { return linear(v[0], v[1]); }, {x, w});
  }
}

TEST(OpsMatmul, LinearLowRankIsLinearPlusScaledUpdate) {
  uint64_t seed = 3125;
  for (const Shape& x_shape : {Shape{3, 7}, Shape{2, 5, 7}}) {
    SCOPED_TRACE(shape_str(x_shape));
    Shape a_shape = x_shape;
    a_shape.back() = 2;
    Variable x = param(uniform(x_shape, seed++), "x");
    Variable w = param(uniform({5, 7}, seed++), "weight");
    Variable bias = param(uniform({5}, seed++), "bias");
    Variable a = param(uniform(a_shape, seed++), "a");
    Variable b = param(uniform({5, 2}, seed++), "b");
    expect_gradcheck(
        [](const std::vector<Variable>& v) {
          return linear_low_rank(v[0], v[1], v[2], v[3], v[4], 1.5f);
        },
        {x, w, bias, a, b});
    expect_gradcheck(
        [](const std::vector<Variable>& v) {
          return linear_low_rank(v[0], v[1], Variable(), v[2], v[3], -0.5f);
        },
        {x, w, a, b});
    // The value is the composition's: linear + alpha · a bᵀ.
    Variable composed = add(linear(x, w, bias), scale(linear(a, b), 1.5f));
    const std::vector<float> want = values(composed.data());
    const std::vector<float> got = values(linear_low_rank(x, w, bias, a, b, 1.5f).data());
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6f) << i;
  }
}

TEST(OpsMatmul, LinearGeluIsGeluOfLinear) {
  uint64_t seed = 3150;
  for (const Shape& x_shape : {Shape{3, 7}, Shape{2, 5, 7}}) {
    SCOPED_TRACE(shape_str(x_shape));
    Variable x = param(uniform(x_shape, seed++, -2.0f, 2.0f), "x");
    Variable w = param(uniform({5, 7}, seed++), "weight");
    Variable bias = param(uniform({5}, seed++), "bias");
    expect_gradcheck([](const std::vector<Variable>& v) { return linear_gelu(v[0], v[1], v[2]); },
                     {x, w, bias});
    expect_gradcheck([](const std::vector<Variable>& v) { return linear_gelu(v[0], v[1]); },
                     {x, w});
    // On the CPU the fused call is the composition, forward and backward, bit for bit.
    Tensor seed_grad = uniform(linear(x, w).shape(), seed++);
    Variable fused = linear_gelu(x, w, bias);
    fused.backward(seed_grad);
    const std::vector<float> fx = values(x.grad()), fw = values(w.grad()), fb = values(bias.grad());
    for (Variable* v : {&x, &w, &bias}) v->zero_grad();
    Variable composed = gelu(linear(x, w, bias));
    composed.backward(seed_grad);
    EXPECT_EQ(values(fused.data()), values(composed.data()));
    EXPECT_EQ(fx, values(x.grad()));
    EXPECT_EQ(fw, values(w.grad()));
    EXPECT_EQ(fb, values(bias.grad()));
    for (Variable* v : {&x, &w, &bias}) v->zero_grad();
  }
}

TEST(OpsShape, Reshape) {
  Variable x = param(uniform({2, 5, 13}, 3200));
  Variable y = reshape(x, {10, -1});
  EXPECT_EQ(y.shape(), (Shape{10, 13}));
  EXPECT_TRUE(y.data().same_storage(x.data()));
  // Followed by an op that is not elementwise, so a wrong reshape of the gradient would show.
  expect_gradcheck(
      [](const std::vector<Variable>& v) {
        return softmax(reshape(v[0], {10, 13}));
      },
      {x});
  Variable z = param(uniform({3, 7}, 3201));
  expect_gradcheck(
      [](const std::vector<Variable>& v) {
        return softmax(reshape(v[0], {7, 3}));
      },
      {z});
}

TEST(OpsShape, Slice) {
  Variable x = param(uniform({5, 7}, 3300));
  expect_gradcheck([](const std::vector<Variable>& v) { return tanh(slice(v[0], 1, 4)); }, {x});
  Variable y = param(uniform({3, 5, 13}, 3301));
  expect_gradcheck([](const std::vector<Variable>& v) { return softmax(slice(v[0], 2, 3)); }, {y});
  // Two slices of one variable: their gradients add up in the untouched-elsewhere full tensor.
  expect_gradcheck(
      [](const std::vector<Variable>& v) { return mul(slice(v[0], 0, 2), slice(v[0], 1, 3)); },
      {y});
}

TEST(OpsShape, Concat) {
  Variable a = param(uniform({2, 7}, 3400), "a");
  Variable b = param(uniform({1, 7}, 3401), "b");
  Variable c = param(uniform({4, 7}, 3402), "c");
  Variable out = concat({a, b, c});
  EXPECT_EQ(out.shape(), (Shape{7, 7}));
  expect_gradcheck([](const std::vector<Variable>& v) { return softmax(concat(v)); }, {a, b, c});
  // One input twice, and an odd 3-D case.
  Variable d = param(uniform({2, 5, 13}, 3403));
  expect_gradcheck(
      [](const std::vector<Variable>& v) {
        return tanh(concat({v[0], v[0], v[1]}));
      },
      {d, param(uniform({1, 5, 13}, 3404))});
}

}  // namespace
}  // namespace rlaif
