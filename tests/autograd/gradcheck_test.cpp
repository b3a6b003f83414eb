// The gradient checker itself: it passes correct rules, FAILS wrong ones (and says where),
// samples big inputs deterministically, and leaves the inputs as it found them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "tests/autograd/test_util.h"

namespace rlaif {
namespace {

using test::param;
using test::uniform;
using test::values;

// x² with a pluggable derivative factor: the right rule is 2·x, anything else is a bug.
Variable square_with_rule(const Variable& x, float factor) {
  Tensor in = x.data();
  Tensor out = Tensor::empty(in.shape(), DType::f32);
  backend_for(in.device()).unary(UnaryOp::square, in, out);
  return record_op("square_with_rule", out, {x}, [in, factor](const Tensor& g) {
    Tensor dx = Tensor::empty(in.shape(), DType::f32);
    Backend& be = backend_for(g.device());
    be.binary(BinaryOp::mul, g, in, dx);
    be.affine(dx, factor, 0.0f, dx);
    return std::vector<Tensor>{dx};
  });
}

TEST(Gradcheck, PassesACorrectRule) {
  Variable x = param(uniform({3, 7}, 1), "x");
  GradcheckResult r =
      gradcheck([](const std::vector<Variable>& in) { return square_with_rule(in[0], 2.0f); }, {x});
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_EQ(r.checked, 21);
  EXPECT_LT(r.max_abs_error, 1e-3);
  EXPECT_NE(r.report.find("passed"), std::string::npos) << r.report;
}

TEST(Gradcheck, FailsAWrongRuleAndSaysWhere) {
  Variable x = param(uniform({3, 7}, 2), "x");
  GradcheckResult r =
      gradcheck([](const std::vector<Variable>& in) { return square_with_rule(in[0], 3.0f); }, {x});
  EXPECT_FALSE(r.ok);
  EXPECT_GT(r.max_abs_error, 1e-2);
  EXPECT_NE(r.report.find("FAILED"), std::string::npos) << r.report;
  EXPECT_NE(r.report.find("input 0 'x'"), std::string::npos) << r.report;
  EXPECT_NE(r.report.find("element"), std::string::npos) << r.report;
  EXPECT_NE(r.report.find("numerical"), std::string::npos) << r.report;
  EXPECT_NE(r.report.find("analytical"), std::string::npos) << r.report;
}

TEST(Gradcheck, FailsAMissingGradient) {
  // A rule that forgets its input entirely: analytical 0, numerical 2x.
  Variable x = param(test::away_from_zero({5}, 3), "x");
  GradcheckResult r = gradcheck(
      [](const std::vector<Variable>& in) {
        Tensor out = in[0].data().clone();
        return record_op("forgetful", out, {in[0]},
                         [](const Tensor&) { return std::vector<Tensor>{Tensor()}; });
      },
      {x});
  EXPECT_FALSE(r.ok) << r.report;
}

TEST(Gradcheck, CatchesAWrongBroadcastReduction) {
  // The gradient of a broadcast bias must be summed over rows; only the rows' sum is right.
  Variable a = param(uniform({4, 3}, 4)), b = param(uniform({3}, 5));
  GradcheckResult good =
      gradcheck([](const std::vector<Variable>& in) { return add(in[0], in[1]); }, {a, b});
  EXPECT_TRUE(good.ok) << good.report;
  GradcheckResult bad = gradcheck(
      [](const std::vector<Variable>& in) {
        Tensor out = Tensor::empty({4, 3}, DType::f32);
        backend_for(Device::cpu()).binary(BinaryOp::add, in[0].data(), in[1].data(), out);
        return record_op("bad_bias", out, {in[0], in[1]}, [](const Tensor& g) {
          return std::vector<Tensor>{g, g.select(0).clone()};  // row 0 only: wrong
        });
      },
      {a, b});
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.report.find("input 1"), std::string::npos) << bad.report;
}

TEST(Gradcheck, SamplesBigInputsDeterministically) {
  Variable x = param(uniform({40, 50}, 6));
  GradcheckOptions opts;
  opts.max_checks_per_input = 37;
  auto f = [](const std::vector<Variable>& in) { return tanh(in[0]); };
  GradcheckResult r1 = gradcheck(f, {x}, opts);
  GradcheckResult r2 = gradcheck(f, {x}, opts);
  EXPECT_TRUE(r1.ok) << r1.report;
  EXPECT_EQ(r1.checked, 37);
  EXPECT_EQ(r1.max_abs_error, r2.max_abs_error);
  EXPECT_EQ(r1.report, r2.report);
}

TEST(Gradcheck, OnlyChecksInputsThatRequireGradAndRestoresState) {
  Variable x = param(uniform({3, 4}, 7));
  Variable c(uniform({3, 4}, 8));  // a constant
  std::vector<float> x_before = values(x.data()), c_before = values(c.data());
  Tensor old_grad = uniform({3, 4}, 9);
  x.set_grad(old_grad);
  GradcheckResult r;
  {
    NoGradGuard no_grad;  // gradcheck records its analytical run regardless
    r = gradcheck([](const std::vector<Variable>& in) { return mul(in[0], in[1]); }, {x, c});
  }
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_EQ(r.checked, 12);
  EXPECT_EQ(values(x.data()), x_before);
  EXPECT_EQ(values(c.data()), c_before);
  EXPECT_TRUE(x.grad().same_storage(old_grad)) << "the caller's gradient is restored";
  EXPECT_FALSE(c.grad().defined());
}

TEST(Gradcheck, OutputMayHaveAnyShape) {
  // A 0-d output, a [3, 7] output and an output not depending on the input at all.
  Variable x = param(uniform({3, 7}, 10));
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return sum_all(in[0]); }, {x}).ok);
  EXPECT_TRUE(gradcheck([](const std::vector<Variable>& in) { return sigmoid(in[0]); }, {x}).ok);
  Variable c(uniform({2}, 11));
  GradcheckResult r = gradcheck([c](const std::vector<Variable>&) { return exp(c); }, {x});
  EXPECT_TRUE(r.ok) << r.report;
}

}  // namespace
}  // namespace rlaif
