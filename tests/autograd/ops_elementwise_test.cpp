// Gradchecks of the elementwise ops on two shapes each (one 2-D, one odd-sized 3-D), with inputs
// kept inside each op's smooth domain.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "tests/autograd/test_util.h"

namespace rlaif {
namespace {

using test::away_from_zero;
using test::expect_gradcheck;
using test::param;
using test::uniform;

const std::vector<Shape> kShapes = {{3, 7}, {2, 5, 13}};

// b's shapes for a of each kShapes entry: same shape, a suffix, one element.
std::vector<Shape> b_shapes_for(const Shape& a) {
  return {a, Shape(a.begin() + 1, a.end()), Shape{1}};
}

// b broadcast onto a's shape, elementwise (test-side reference).
Tensor broadcast(const Tensor& b, const Shape& a_shape) {
  Tensor out = Tensor::empty(a_shape, DType::f32);
  for (int64_t i = 0; i < out.numel(); ++i) {
    out.data<float>()[i] = b.data<float>()[i % b.numel()];
  }
  return out;
}

TEST(OpsElementwise, AddSubMul) {
  uint64_t seed = 100;
  for (const Shape& sa : kShapes) {
    for (const Shape& sb : b_shapes_for(sa)) {
      SCOPED_TRACE("a " + shape_str(sa) + " b " + shape_str(sb));
      Variable a = param(uniform(sa, seed++), "a"), b = param(uniform(sb, seed++), "b");
      expect_gradcheck([](const std::vector<Variable>& v) { return add(v[0], v[1]); }, {a, b});
      expect_gradcheck([](const std::vector<Variable>& v) { return sub(v[0], v[1]); }, {a, b});
      expect_gradcheck([](const std::vector<Variable>& v) { return mul(v[0], v[1]); }, {a, b});
    }
  }
}

TEST(OpsElementwise, Div) {
  uint64_t seed = 200;
  for (const Shape& sa : kShapes) {
    for (const Shape& sb : b_shapes_for(sa)) {
      SCOPED_TRACE("a " + shape_str(sa) + " b " + shape_str(sb));
      // The divisor stays in [0.5, 2): far from the pole at 0.
      Variable a = param(uniform(sa, seed++), "a"), b = param(uniform(sb, seed++, 0.5f, 2.0f), "b");
      expect_gradcheck([](const std::vector<Variable>& v) { return div(v[0], v[1]); }, {a, b});
    }
  }
}

TEST(OpsElementwise, MinimumMaximum) {
  uint64_t seed = 300;
  for (const Shape& sa : kShapes) {
    for (const Shape& sb : b_shapes_for(sa)) {
      SCOPED_TRACE("a " + shape_str(sa) + " b " + shape_str(sb));
      // a = broadcast(b) ± [0.1, 0.5): every pair is at least 0.1 apart, so no tie is within eps.
      Tensor tb = uniform(sb, seed++);
      Tensor ta = broadcast(tb, sa);
      Tensor offset = away_from_zero(sa, seed++, 0.1f, 0.5f);
      for (int64_t i = 0; i < ta.numel(); ++i) ta.data<float>()[i] += offset.data<float>()[i];
      Variable a = param(ta, "a"), b = param(tb, "b");
      expect_gradcheck([](const std::vector<Variable>& v) { return minimum(v[0], v[1]); }, {a, b});
      expect_gradcheck([](const std::vector<Variable>& v) { return maximum(v[0], v[1]); }, {a, b});
    }
  }
}

TEST(OpsElementwise, BinaryWithOneInputConstant) {
  Variable a = param(uniform({3, 7}, 400)), c(uniform({7}, 401, 0.5f, 2.0f));
  expect_gradcheck([c](const std::vector<Variable>& v) { return div(v[0], c); }, {a});
  expect_gradcheck([c](const std::vector<Variable>& v) { return sub(c, v[0]); },
                   {param(uniform({7}, 402))});
}

struct UnaryCase {
  std::string name;
  Variable (*fn)(const Variable&);
  enum Domain { any, positive, nonzero } domain;
};

TEST(OpsElementwise, Unary) {
  const std::vector<UnaryCase> cases = {
      {"neg", neg, UnaryCase::any},
      {"exp", exp, UnaryCase::any},
      {"log", log, UnaryCase::positive},
      {"sqrt", sqrt, UnaryCase::positive},
      {"square", square, UnaryCase::any},
      {"abs", abs, UnaryCase::nonzero},
      {"relu", relu, UnaryCase::nonzero},
      {"sigmoid", sigmoid, UnaryCase::any},
      {"log_sigmoid", log_sigmoid, UnaryCase::any},
      {"tanh", tanh, UnaryCase::any},
      {"gelu", gelu, UnaryCase::any},
      {"silu", silu, UnaryCase::any},
  };
  uint64_t seed = 500;
  for (const UnaryCase& c : cases) {
    for (const Shape& shape : kShapes) {
      SCOPED_TRACE(c.name + " " + shape_str(shape));
      Tensor x = c.domain == UnaryCase::positive  ? uniform(shape, seed++, 0.5f, 2.0f)
                 : c.domain == UnaryCase::nonzero ? away_from_zero(shape, seed++)
                                                  : uniform(shape, seed++, -2.0f, 2.0f);
      auto fn = c.fn;
      expect_gradcheck([fn](const std::vector<Variable>& v) { return fn(v[0]); }, {param(x)});
    }
  }
}

TEST(OpsElementwise, ScaleAffine) {
  uint64_t seed = 600;
  for (const Shape& shape : kShapes) {
    Variable x = param(uniform(shape, seed++));
    expect_gradcheck([](const std::vector<Variable>& v) { return scale(v[0], -1.75f); }, {x});
    expect_gradcheck([](const std::vector<Variable>& v) { return affine(v[0], 0.5f, 3.0f); }, {x});
  }
}

TEST(OpsElementwise, Clamp) {
  uint64_t seed = 700;
  for (const Shape& shape : kShapes) {
    SCOPED_TRACE(shape_str(shape));
    // Half the values inside (-0.4, 0.4), half outside ±[0.6, 1.2): none within 0.1 of ±0.5.
    Tensor x = away_from_zero(shape, seed++, 0.0f, 1.0f);
    for (int64_t i = 0; i < x.numel(); ++i) {
      float& v = x.data<float>()[i];
      float mag = std::fabs(v);
      float mapped = mag < 0.5f ? 0.8f * mag : 0.6f + 1.2f * (mag - 0.5f);
      v = v < 0 ? -mapped : mapped;
    }
    expect_gradcheck([](const std::vector<Variable>& v) { return clamp(v[0], -0.5f, 0.5f); },
                     {param(x)});
  }
}

TEST(OpsElementwise, Where) {
  uint64_t seed = 800;
  for (const Shape& shape : kShapes) {
    SCOPED_TRACE(shape_str(shape));
    Tensor cond = Tensor::empty(shape, DType::u8);
    Tensor r = uniform(shape, seed++);
    for (int64_t i = 0; i < cond.numel(); ++i) cond.data<uint8_t>()[i] = r.data<float>()[i] > 0;
    Variable a = param(uniform(shape, seed++)), b = param(uniform(shape, seed++));
    expect_gradcheck([cond](const std::vector<Variable>& v) { return where(cond, v[0], v[1]); },
                     {a, b});
  }
}

}  // namespace
}  // namespace rlaif
