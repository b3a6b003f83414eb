// The backward engine: summing over multiple uses, accumulation across calls, rules that add into
// a leaf's gradient themselves, freeing the graph, grad mode, error messages, and graphs deep
// enough to overflow a recursive implementation.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "tests/autograd/test_util.h"
#include "tests/error_of.h"

namespace rlaif {
namespace {

using test::error_of;

using test::param;
using test::uniform;
using test::values;

TEST(Variable, LeafBasics) {
  Variable x(uniform({3, 7}, 1), true, "x");
  EXPECT_TRUE(x.defined());
  EXPECT_TRUE(x.is_leaf());
  EXPECT_TRUE(x.requires_grad());
  EXPECT_EQ(x.shape(), (Shape{3, 7}));
  EXPECT_EQ(x.numel(), 21);
  EXPECT_EQ(x.dtype(), DType::f32);
  EXPECT_TRUE(x.device().is_cpu());
  EXPECT_EQ(x.name(), "x");
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(Variable().defined());
  EXPECT_NE(error_of([] { Variable().data(); }).find("undefined"), std::string::npos);

  Variable d = x.detach();
  EXPECT_TRUE(d.data().same_storage(x.data()));
  EXPECT_FALSE(d.requires_grad());
  EXPECT_FALSE(d.is_same(x));

  // Integer tensors cannot require gradients.
  EXPECT_THROW(Variable(test::i32({1, 2}, {2}), true), Error);
  // set_grad checks the shape.
  EXPECT_THROW(x.set_grad(Tensor::zeros({7, 3}, DType::f32)), Error);
}

TEST(Tape, VariableUsedTwiceSumsGradients) {
  Variable x = param(uniform({3, 7}, 2));
  // mul(x, x): both inputs are x, d/dx = 2x.
  sum_all(mul(x, x)).backward();
  std::vector<float> xv = values(x.data()), g = values(x.grad());
  for (size_t i = 0; i < xv.size(); ++i) EXPECT_FLOAT_EQ(g[i], 2.0f * xv[i]);

  // add(x, x) passes the same gradient tensor to both inputs: the engine must not add it into
  // itself in place.
  x.zero_grad();
  sum_all(add(x, x)).backward();
  for (float v : values(x.grad())) EXPECT_FLOAT_EQ(v, 2.0f);

  // An interior variable used by two ops: y = h·h + h with h = 3x, dy/dx = (2h + 1)·3.
  x.zero_grad();
  Variable h = scale(x, 3.0f);
  sum_all(add(mul(h, h), h)).backward();
  g = values(x.grad());
  for (size_t i = 0; i < xv.size(); ++i) EXPECT_NEAR(g[i], (6.0f * xv[i] + 1.0f) * 3.0f, 1e-5);
  EXPECT_FALSE(h.grad().defined()) << "interior variables keep no gradient";
}

TEST(Tape, GradientsAccumulateAcrossBackwardCalls) {
  Variable x = param(uniform({2, 5, 13}, 3));
  sum_all(square(x)).backward();
  std::vector<float> once = values(x.grad());
  Tensor grad_before = x.grad();
  sum_all(square(x)).backward();
  std::vector<float> twice = values(x.grad());
  for (size_t i = 0; i < once.size(); ++i) EXPECT_FLOAT_EQ(twice[i], 2.0f * once[i]);
  EXPECT_TRUE(x.grad().same_storage(grad_before)) << ".grad is accumulated in place";
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Tape, SeedsAnArbitraryOutputGradient) {
  Variable x = param(uniform({3, 7}, 4));
  Tensor seed = uniform({3, 7}, 5);
  scale(x, 2.0f).backward(seed);
  std::vector<float> s = values(seed), g = values(x.grad());
  for (size_t i = 0; i < s.size(); ++i) EXPECT_FLOAT_EQ(g[i], 2.0f * s[i]);
  // The seed is the caller's: it is untouched, and not adopted as the leaf's .grad.
  EXPECT_FALSE(x.grad().same_storage(seed));

  // Backward on a leaf seeds its own gradient (copied: the caller keeps their tensor).
  Variable leaf = param(uniform({4}, 6));
  Tensor ones = Tensor::empty({4}, DType::f32);
  for (int i = 0; i < 4; ++i) ones.data<float>()[i] = 1.0f;
  leaf.backward(ones);
  EXPECT_EQ(values(leaf.grad()), values(ones));
  EXPECT_FALSE(leaf.grad().same_storage(ones));

  EXPECT_THROW(scale(x, 2.0f).backward(uniform({7, 3}, 7)), Error);
}

TEST(Tape, BackwardOnNonScalarWithoutSeedThrows) {
  Variable x = param(uniform({3, 7}, 8));
  std::string msg = error_of([&] { exp(x).backward(); });
  EXPECT_NE(msg.find("[3, 7]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("scalar"), std::string::npos) << msg;
  // A one-element tensor of any rank is a scalar.
  sum_all(x).backward();
  reshape(sum_all(x), {1, 1}).backward();
  for (float v : values(x.grad())) EXPECT_FLOAT_EQ(v, 2.0f);
}

TEST(Tape, BackwardWithoutAnyGradientThrows) {
  Variable x(uniform({3}, 9));  // requires_grad = false
  std::string msg = error_of([&] { sum_all(x).backward(); });
  EXPECT_NE(msg.find("does not require a gradient"), std::string::npos) << msg;
}

TEST(Tape, GraphIsFreedAfterBackward) {
  Variable x = param(uniform({3, 7}, 10));
  Variable y = exp(x);  // saves its input and output for the backward rule
  Variable loss = sum_all(y);
  long x_before = x.data().use_count();
  long y_before = y.data().use_count();
  ASSERT_FALSE(y.is_leaf());
  loss.backward();
  EXPECT_LT(x.data().use_count(), x_before) << "the saved input was not released";
  EXPECT_LT(y.data().use_count(), y_before) << "the saved output was not released";
  EXPECT_TRUE(y.grad_fn()->released);
  EXPECT_TRUE(y.grad_fn()->inputs.empty());
  EXPECT_FALSE(static_cast<bool>(y.grad_fn()->backward));
  // Back-propagating through the freed graph again is an error that says what happened.
  std::string msg = error_of([&] { loss.backward(); });
  EXPECT_NE(msg.find("already freed"), std::string::npos) << msg;
  msg = error_of([&] { sum_all(y).backward(); });
  EXPECT_NE(msg.find("already freed"), std::string::npos) << msg;
}

TEST(Tape, DroppingAnUnusedGraphReleasesSavedTensors) {
  Variable x = param(uniform({3, 7}, 11));
  long before = x.data().use_count();
  {
    Variable y = sum_all(exp(exp(x)));
    EXPECT_GT(x.data().use_count(), before);
  }
  EXPECT_EQ(x.data().use_count(), before);
}

TEST(GradMode, NoGradRecordsNothing) {
  Variable x = param(uniform({3, 7}, 12));
  EXPECT_TRUE(grad_mode_enabled());
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(grad_mode_enabled());
    Variable y = mul(exp(x), x);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.is_leaf());
    EXPECT_EQ(y.grad_fn(), nullptr);
    {
      NoGradGuard nested;
      EXPECT_FALSE(grad_mode_enabled());
    }
    EXPECT_FALSE(grad_mode_enabled()) << "a nested guard restores the mode it found";
  }
  EXPECT_TRUE(grad_mode_enabled());
  EXPECT_TRUE(exp(x).requires_grad());

  // No input requiring a gradient: nothing is recorded either.
  Variable c(uniform({3, 7}, 13));
  Variable z = exp(c);
  EXPECT_FALSE(z.requires_grad());
  EXPECT_EQ(z.grad_fn(), nullptr);
  // Mixed inputs record, and the input that needs no gradient gets none.
  sum_all(mul(x, c)).backward();
  EXPECT_TRUE(x.grad().defined());
  EXPECT_FALSE(c.grad().defined());
}

TEST(Tape, DeepChainDoesNotOverflowTheStack) {
  constexpr int kDepth = 10000;
  Variable x = param(uniform({4}, 14));
  Variable h = x;
  for (int i = 0; i < kDepth; ++i) h = affine(h, 1.0f, 0.001f);
  sum_all(h).backward();
  for (float v : values(x.grad())) EXPECT_FLOAT_EQ(v, 1.0f);

  // Destroying a long graph that never ran backward must not recurse once per node either.
  Variable y = x;
  for (int i = 0; i < 20 * kDepth; ++i) y = affine(y, 1.0f, 0.0f);
  y = Variable();
  SUCCEED();
}

TEST(Tape, WrongGradientShapeNamesTheOp) {
  Variable x = param(uniform({3, 7}, 15));
  Variable y = record_op("bad_op", x.data().clone(), {x}, [](const Tensor&) -> std::vector<Tensor> {
    return {Tensor::zeros({7, 3}, DType::f32)};
  });
  std::string msg = error_of([&] { sum_all(y).backward(); });
  EXPECT_NE(msg.find("bad_op"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[7, 3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[3, 7]"), std::string::npos) << msg;
}

TEST(Tape, ErrorsInsideBackwardRulesNameTheOp) {
  Variable x = param(uniform({3}, 16));
  Variable y = record_op("throwing_op", x.data().clone(), {x},
                         [](const Tensor&) -> std::vector<Tensor> { throw Error("boom"); });
  std::string msg = error_of([&] { sum_all(y).backward(); });
  EXPECT_NE(msg.find("throwing_op"), std::string::npos) << msg;
  EXPECT_NE(msg.find("boom"), std::string::npos) << msg;
}

// y = 2·x recorded with record_op_into_leaves: the rule adds 2·g into the destination the engine
// hands it, or returns 2·g when there is none. Seeds of 1 (sum_all), x = [1, 2, 3]:
//   first backward: x has no .grad yet, so no destination; the engine stores 2·1 = [2, 2, 2];
//   second backward: x.grad is the destination, the rule adds in place: [2 + 2, ...] = [4, 4, 4],
//   in the same storage;
//   through an interior input (scale(x, 1)) there is never a destination, and the engine's adds
//   give the same [2, 2, 2] then [4, 4, 4].
TEST(Tape, IntoLeavesRulesAddInPlaceOnlyIntoAnExistingLeafGradient) {
  std::vector<bool> had_destination;
  auto twice = [&](const Variable& x) {
    Tensor doubled = x.data().clone();
    backend_for(doubled.device()).affine(x.data(), 2.0f, 0.0f, doubled);
    return record_op_into_leaves(
        "twice", doubled, {x},
        [&had_destination](const Tensor& g,
                           const std::vector<Tensor>& leaf_grads) -> std::vector<Tensor> {
          EXPECT_EQ(leaf_grads.size(), 1u);
          Tensor dx = Tensor::empty(g.shape(), g.dtype(), g.device());
          backend_for(g.device()).affine(g, 2.0f, 0.0f, dx);
          had_destination.push_back(leaf_grads[0].defined());
          if (!leaf_grads[0].defined()) return {dx};
          backend_for(g.device()).binary(BinaryOp::add, leaf_grads[0], dx, leaf_grads[0]);
          return {Tensor()};
        });
  };
  Variable x = param(Tensor::from_vector<float>({1, 2, 3}, {3}), "x");
  sum_all(twice(x)).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<float>{2, 2, 2}));
  const void* storage = x.grad().raw_data();
  sum_all(twice(x)).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<float>{4, 4, 4}));
  EXPECT_EQ(x.grad().raw_data(), storage);
  EXPECT_EQ(had_destination, (std::vector<bool>{false, true}));

  had_destination.clear();
  Variable w = param(Tensor::from_vector<float>({1, 2, 3}, {3}), "w");
  sum_all(twice(scale(w, 1.0f))).backward();
  sum_all(twice(scale(w, 1.0f))).backward();
  EXPECT_EQ(values(w.grad()), (std::vector<float>{4, 4, 4}));
  EXPECT_EQ(had_destination, (std::vector<bool>{false, false}));
}

TEST(Tape, ForwardErrorsNameTheOpAndShapes) {
  Variable a = param(uniform({3, 4}, 17)), b = param(uniform({5, 6}, 18));
  std::string msg = error_of([&] { matmul(a, b); });
  EXPECT_NE(msg.find("matmul"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[3, 4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[5, 6]"), std::string::npos) << msg;
  msg = error_of([&] { linear(a, b); });
  EXPECT_NE(msg.find("linear"), std::string::npos) << msg;
  msg = error_of([&] { sum(a, 2); });
  EXPECT_NE(msg.find("sum"), std::string::npos) << msg;
  EXPECT_THROW(add(a, b), Error);
  EXPECT_THROW(reshape(a, {5}), Error);
  EXPECT_THROW(slice(a, 2, 4), Error);
  EXPECT_THROW(concat({a, b}), Error);
}

TEST(Tape, SetRequiresGradOnlyOnLeaves) {
  Variable x = param(uniform({3}, 19));
  Variable y = exp(x);
  EXPECT_THROW(y.set_requires_grad(false), Error);
  Variable z(uniform({3}, 20));
  z.set_requires_grad(true);
  sum_all(exp(z)).backward();
  EXPECT_TRUE(z.grad().defined());
}

TEST(Tape, BackwardIsDeterministic) {
  auto run = [] {
    Variable x = param(uniform({5, 13}, 21));
    Variable w = param(uniform({13, 13}, 22));
    Variable h = x;
    for (int i = 0; i < 4; ++i) h = add(tanh(matmul(h, w)), h);  // shared w, residual reuse
    sum_all(softmax(h)).backward();
    return std::make_pair(values(x.grad()), values(w.grad()));
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
}  // namespace rlaif
