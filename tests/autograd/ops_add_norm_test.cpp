// The fused residual-add + norm ops (add_layernorm, add_rmsnorm): finite-difference gradients
// with gradients arriving at the sum, at the normalised sum, or at both (directly and through a
// chain of residual steps, as in a transformer), and bit-for-bit agreement with add then norm.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tests/autograd/test_util.h"

namespace rlaif {
namespace {

using test::expect_gradcheck;
using test::param;
using test::uniform;

// add_layernorm (layer) or add_rmsnorm; beta is ignored by RMSNorm.
AddNorm fused(bool layer, const Variable& x, const Variable& r, const Variable& gamma,
              const Variable& beta) {
  return layer ? add_layernorm(x, r, gamma, beta, 1e-5f) : add_rmsnorm(x, r, gamma, 1e-6f);
}

// The same from separate ops.
AddNorm unfused(bool layer, const Variable& x, const Variable& r, const Variable& gamma,
                const Variable& beta) {
  Variable sum = add(x, r);
  return {sum, layer ? layernorm(sum, gamma, beta, 1e-5f) : rmsnorm(sum, gamma, 1e-6f)};
}

using AddNormFn = AddNorm (*)(bool, const Variable&, const Variable&, const Variable&,
                              const Variable&);

// Two residual steps of a pre-norm block, the second reading both outputs of the first (its sum
// as the stream, its normalised sum through a "block" w ⊙ h), so the first step's sum collects a
// gradient from the second step and from its own norm. Returns both outputs of the second step.
Variable two_steps(AddNormFn step, bool layer, const std::vector<Variable>& v) {
  // v: x, r, gamma1, beta1, w, gamma2, beta2
  AddNorm s1 = step(layer, v[0], v[1], v[2], v[3]);
  AddNorm s2 = step(layer, s1.sum, mul(s1.out, v[4]), v[5], v[6]);
  return concat({s2.sum, s2.out});
}

std::vector<Variable> two_step_inputs(const Shape& shape, uint64_t seed) {
  const Shape gain{shape.back()};
  return {param(uniform(shape, seed, -2.0f, 2.0f), "x"),
          param(uniform(shape, seed + 1, -1.0f, 1.0f), "residual"),
          param(uniform(gain, seed + 2, 0.5f, 1.5f), "gamma1"),
          param(uniform(gain, seed + 3), "beta1"),
          param(uniform(shape, seed + 4, 0.5f, 1.5f), "w"),
          param(uniform(gain, seed + 5, 0.5f, 1.5f), "gamma2"),
          param(uniform(gain, seed + 6), "beta2")};
}

class AddNormOp : public ::testing::TestWithParam<bool> {
 protected:
  bool layer() const { return GetParam(); }
};

TEST_P(AddNormOp, GradientsOfBothOutputs) {
  uint64_t seed = 2600;
  for (const Shape& shape : {Shape{3, 7}, Shape{2, 5, 13}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t d = shape.back();
    Variable x = param(uniform(shape, seed++, -2.0f, 2.0f), "x");
    Variable r = param(uniform(shape, seed++, -1.0f, 1.0f), "residual");
    Variable gamma = param(uniform({d}, seed++, 0.5f, 1.5f), "gamma");
    Variable beta = param(uniform({d}, seed++), "beta");
    const bool ln = layer();
    std::vector<Variable> inputs{x, r, gamma};
    if (ln) inputs.push_back(beta);
    auto beta_of = [ln](const std::vector<Variable>& v) { return ln ? v[3] : Variable(); };
    // Both outputs (concat hands each a slice of one gradient: a shared sum gradient, which the
    // op must copy before accumulating into it).
    expect_gradcheck(
        [ln, beta_of](const std::vector<Variable>& v) {
          AddNorm s = fused(ln, v[0], v[1], v[2], beta_of(v));
          return concat({s.sum, s.out});
        },
        inputs);
    // Only the normalised sum.
    expect_gradcheck(
        [ln, beta_of](const std::vector<Variable>& v) {
          return fused(ln, v[0], v[1], v[2], beta_of(v)).out;
        },
        inputs);
    // Only the sum: the gradient passes to x and residual unchanged.
    expect_gradcheck(
        [ln, gamma](const std::vector<Variable>& v) {
          return fused(ln, v[0], v[1], gamma, Variable()).sum;
        },
        {x, r});
    if (ln) {
      // LayerNorm without a shift.
      expect_gradcheck(
          [](const std::vector<Variable>& v) {
            AddNorm s = add_layernorm(v[0], v[1], v[2], Variable(), 1e-5f);
            return concat({s.sum, s.out});
          },
          {x, r, gamma});
    }
  }
}

TEST_P(AddNormOp, GradientsThroughResidualSteps) {
  const bool ln = layer();
  expect_gradcheck([ln](const std::vector<Variable>& v) { return two_steps(fused, ln, v); },
                   two_step_inputs({4, 9}, 2700));
}

// The fused op changes no number: values and every gradient equal those of add then norm.
TEST_P(AddNormOp, BitForBitAsAddThenNorm) {
  const bool ln = layer();
  auto run = [ln](AddNormFn step, Variable* out) {
    std::vector<Variable> in = two_step_inputs({6, 33}, 2800);
    Variable y = two_steps(step, ln, in);
    y.backward(uniform(y.shape(), 2900));
    *out = y;
    std::vector<std::vector<float>> grads;
    for (const Variable& v : in) {
      const bool used = ln || (v.name() != "beta1" && v.name() != "beta2");
      EXPECT_EQ(v.grad().defined(), used) << v.name();
      grads.push_back(used ? v.grad().to_vector<float>() : std::vector<float>{});
    }
    return grads;
  };
  Variable y_fused, y_plain;
  std::vector<std::vector<float>> g_fused = run(fused, &y_fused);
  std::vector<std::vector<float>> g_plain = run(unfused, &y_plain);
  EXPECT_EQ(y_fused.data().to_vector<float>(), y_plain.data().to_vector<float>());
  ASSERT_EQ(g_fused.size(), g_plain.size());
  for (size_t i = 0; i < g_fused.size(); ++i) EXPECT_EQ(g_fused[i], g_plain[i]) << "input " << i;
}

// x and residual the same variable: its gradient is twice d(sum).
TEST_P(AddNormOp, SameVariableTwice) {
  const bool ln = layer();
  Variable x = param(uniform({3, 8}, 3000, -2.0f, 2.0f), "x");
  Variable gamma = param(uniform({8}, 3001, 0.5f, 1.5f), "gamma");
  Variable beta = param(uniform({8}, 3002), "beta");
  expect_gradcheck(
      [ln](const std::vector<Variable>& v) {
        AddNorm s = fused(ln, v[0], v[0], v[1], ln ? v[2] : Variable());
        return concat({s.sum, s.out});
      },
      ln ? std::vector<Variable>{x, gamma, beta} : std::vector<Variable>{x, gamma});
}

TEST_P(AddNormOp, WithoutGradModeRecordsNothing) {
  const bool ln = layer();
  Variable x = param(uniform({2, 6}, 3100), "x"), r = param(uniform({2, 6}, 3101), "r");
  Variable gamma = param(uniform({6}, 3102, 0.5f, 1.5f)), beta = param(uniform({6}, 3103));
  AddNorm want = unfused(ln, x, r, gamma, beta);
  NoGradGuard no_grad;
  AddNorm got = fused(ln, x, r, gamma, beta);
  EXPECT_FALSE(got.sum.requires_grad());
  EXPECT_FALSE(got.out.requires_grad());
  EXPECT_TRUE(got.sum.is_leaf());
  EXPECT_EQ(got.sum.data().to_vector<float>(), want.sum.data().to_vector<float>());
  EXPECT_EQ(got.out.data().to_vector<float>(), want.out.data().to_vector<float>());
}

TEST_P(AddNormOp, ResidualMustHaveTheShapeOfX) {
  Variable x = param(uniform({2, 6}, 3200)), gamma = param(uniform({6}, 3201));
  // add() would broadcast a [6] residual; the fused op does not.
  EXPECT_THROW(fused(layer(), x, param(uniform({6}, 3202)), gamma, Variable()), Error);
  EXPECT_THROW(fused(layer(), x, Variable(), gamma, Variable()), Error);
}

INSTANTIATE_TEST_SUITE_P(Norms, AddNormOp, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "LayerNorm" : "RmsNorm");
                         });

}  // namespace
}  // namespace rlaif
