// Helpers for the autograd tests: deterministic random inputs (kept inside safe domains) and a
// gradcheck assertion that prints the checker's report on failure.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "runtime/philox.h"
#include "runtime/rng.h"

namespace rlaif::test {

// Host f32 tensor, uniform in [lo, hi), from Philox stream `seed`.
inline Tensor uniform(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Tensor t = Tensor::empty(shape, DType::f32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    p[i] = lo + (hi - lo) * philox_uniform(seed, static_cast<uint64_t>(i));
  }
  return t;
}

// Magnitudes in [lo, hi) with random signs: values at least lo away from 0 (the kink of relu,
// abs and friends).
inline Tensor away_from_zero(const Shape& shape, uint64_t seed, float lo = 0.2f, float hi = 1.0f) {
  Tensor t = uniform(shape, seed, lo, hi);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (philox_uniform(seed + 1, static_cast<uint64_t>(i)) < 0.5f) p[i] = -p[i];
  }
  return t;
}

// Distinct values spaced `step` apart in a random order: no two elements are within 2·eps, so
// max has a unique, well-separated winner in every row.
inline Tensor distinct(const Shape& shape, uint64_t seed, float step = 0.05f) {
  Tensor t = Tensor::empty(shape, DType::f32);
  int64_t n = t.numel();
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
  Generator gen(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    std::swap(perm[static_cast<size_t>(i)],
              perm[static_cast<size_t>(gen.below(static_cast<uint64_t>(i + 1)))]);
  }
  float* p = t.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    p[i] = step * static_cast<float>(perm[static_cast<size_t>(i)] - n / 2);
  }
  return t;
}

inline Tensor i32(const std::vector<int32_t>& values, const Shape& shape) {
  return Tensor::from_vector<int32_t>(values, shape);
}

// A leaf that requires a gradient.
inline Variable param(Tensor data, const std::string& name = "") {
  return Variable(std::move(data), true, name);
}

using Fn = std::function<Variable(const std::vector<Variable>&)>;

// Asserts that gradcheck passes, printing its report (which names the failing element) if not.
inline void expect_gradcheck(const Fn& f, const std::vector<Variable>& inputs,
                             const GradcheckOptions& opts = {}) {
  GradcheckResult r = gradcheck(f, inputs, opts);
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_GT(r.checked, 0) << "nothing was checked";
}

inline std::vector<float> values(const Tensor& t) {
  return t.to_vector<float>();
}

}  // namespace rlaif::test
