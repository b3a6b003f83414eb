// Gradient-norm clipping: the global norm of known gradients, scaling to max_norm, no clipping
// below the threshold or when turned off, and non-finite norms left to the caller.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/grad_clip.h"

namespace rlaif {
namespace {

using NamedParams = std::vector<std::pair<std::string, Variable>>;

// A parameter of the given shape whose gradient holds `grad` (no gradient when empty).
Variable param_with_grad(const std::vector<float>& grad, const Shape& shape) {
  Variable v(Tensor::zeros(shape, DType::f32), true);
  if (!grad.empty()) v.set_grad(Tensor::from_vector<float>(grad, shape));
  return v;
}

TEST(GradClip, NormOfKnownGradients) {
  // One tensor holding 3 and 4, and the same split over two parameters: both 5.
  NamedParams one = {{"a", param_with_grad({3.0f, 4.0f}, {2})}};
  EXPECT_EQ(global_grad_norm(one), 5.0);
  NamedParams two = {{"a", param_with_grad({3.0f}, {1})},
                     {"no_grad", param_with_grad({}, {7})},
                     {"b", param_with_grad({0.0f, 4.0f, 0.0f, 0.0f}, {2, 2})}};
  EXPECT_EQ(global_grad_norm(two), 5.0);
  // No gradients at all: 0.
  NamedParams none = {{"a", param_with_grad({}, {3})}};
  EXPECT_EQ(global_grad_norm(none), 0.0);
  EXPECT_EQ(global_grad_norm({}), 0.0);
}

TEST(GradClip, ClipsToMaxNorm) {
  NamedParams params = {{"a", param_with_grad({3.0f}, {1})},
                        {"b", param_with_grad({4.0f, 0.0f}, {1, 2})},
                        {"no_grad", param_with_grad({}, {2})}};
  EXPECT_EQ(clip_grad_norm(params, 1.0), 5.0);  // the norm before clipping
  // Scaled by 1/(5 + 1e-6): 0.6 and 0.8, the new norm just under 1.
  const double coef = 1.0 / (5.0 + 1e-6);
  EXPECT_NEAR(params[0].second.grad().item(), 3.0 * coef, 1e-7);
  EXPECT_NEAR(params[1].second.grad().to_vector<float>()[0], 4.0 * coef, 1e-7);
  EXPECT_EQ(params[1].second.grad().to_vector<float>()[1], 0.0f);
  EXPECT_FALSE(params[2].second.grad().defined());
  const double after = global_grad_norm(params);
  EXPECT_NEAR(after, 1.0, 1e-6);
  EXPECT_LE(after, 1.0 + 1e-7);
}

TEST(GradClip, NoClipAtOrBelowTheThreshold) {
  for (double max_norm : {5.0 + 1e-6, 10.0, 1e9}) {
    NamedParams params = {{"a", param_with_grad({3.0f, 4.0f}, {2})}};
    EXPECT_EQ(clip_grad_norm(params, max_norm), 5.0);
    EXPECT_EQ(params[0].second.grad().to_vector<float>(), (std::vector<float>{3.0f, 4.0f}))
        << max_norm;
  }
}

TEST(GradClip, MaxNormZeroOrNegativeIsOff) {
  for (double max_norm : {0.0, -1.0}) {
    NamedParams params = {{"a", param_with_grad({30.0f, 40.0f}, {2})}};
    EXPECT_EQ(clip_grad_norm(params, max_norm), 50.0);
    EXPECT_EQ(params[0].second.grad().to_vector<float>(), (std::vector<float>{30.0f, 40.0f}));
  }
}

TEST(GradClip, NonFiniteNormIsReturnedAndNothingScaled) {
  const float inf = std::numeric_limits<float>::infinity();
  NamedParams params = {{"a", param_with_grad({3.0f, inf}, {2})},
                        {"b", param_with_grad({4.0f}, {1})}};
  EXPECT_TRUE(std::isinf(clip_grad_norm(params, 1.0)));
  EXPECT_EQ(params[1].second.grad().item(), 4.0f);
  NamedParams nan = {{"a", param_with_grad({std::nanf(""), 1.0f}, {2})},
                     {"b", param_with_grad({4.0f}, {1})}};
  EXPECT_TRUE(std::isnan(clip_grad_norm(nan, 1.0)));
  EXPECT_EQ(nan[1].second.grad().item(), 4.0f);
}

}  // namespace
}  // namespace rlaif
