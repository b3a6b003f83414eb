// CPU cross-entropy and gathered log-probabilities, forward and backward: closed forms, a
// double-precision loop and central finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "tests/kernels/conformance.h"
#include "tests/support/backends.h"

namespace rlaif {
namespace {

using testing::random_ids;
using testing::random_tensor;

using test::cpu;

constexpr int kIgnore = -100;

// log Σ exp over one row of logits, in double (a plain loop with max subtraction).
double lse_ref(const double* x, int64_t v) {
  double m = x[0];
  for (int64_t j = 1; j < v; ++j) m = std::max(m, x[j]);
  double s = 0.0;
  for (int64_t j = 0; j < v; ++j) s += std::exp(x[j] - m);
  return m + std::log(s);
}

std::vector<double> to_double(const Tensor& t) {
  std::vector<float> f = t.to_vector<float>();
  return {f.begin(), f.end()};
}

// Σ_n w[n]·loss[n] for cross-entropy (gather = false) or log-probabilities (gather = true).
double weighted_loss(const std::vector<double>& x, const std::vector<int32_t>& t,
                     const std::vector<double>& w, int64_t v, bool gather) {
  double total = 0.0;
  for (size_t n = 0; n < t.size(); ++n) {
    if (!gather && t[n] == kIgnore) continue;
    const double* row = x.data() + n * v;
    const double ce = lse_ref(row, v) - row[t[n]];
    total += w[n] * (gather ? -ce : ce);
  }
  return total;
}

// Central differences of weighted_loss with respect to every logit.
std::vector<double> numeric_gradient(std::vector<double> x, const std::vector<int32_t>& t,
                                     const std::vector<double>& w, int64_t v, bool gather) {
  std::vector<double> g(x.size());
  const double h = 1e-6;
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = weighted_loss(x, t, w, v, gather);
    x[i] = saved - h;
    const double down = weighted_loss(x, t, w, v, gather);
    x[i] = saved;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

Tensor f32(const Shape& s) {
  return Tensor::empty(s, DType::f32);
}

TEST(CpuLoss, UniformLogitsGiveLogV) {
  const int64_t n = 3, v = 13;
  Tensor logits = Tensor::from_vector(std::vector<float>(n * v, 2.5f), {n, v});
  Tensor targets = Tensor::from_vector(std::vector<int32_t>{0, 12, 5}, {n});
  Tensor losses = f32({n}), lse = f32({n}), logp = f32({n}), lse2 = f32({n});
  cpu().cross_entropy(logits, targets, kIgnore, losses, lse);
  cpu().gather_logprobs(logits, targets, logp, lse2);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(losses.data<float>()[i], std::log(13.0), 1e-6);
    EXPECT_NEAR(lse.data<float>()[i], 2.5 + std::log(13.0), 1e-6);
    EXPECT_NEAR(logp.data<float>()[i], -std::log(13.0), 1e-6);
    EXPECT_EQ(lse2.data<float>()[i], lse.data<float>()[i]);
  }
}

TEST(CpuLoss, CrossEntropyMatchesDoubleLoopWithLeadingDimensionsAndIgnoredRows) {
  const int64_t v = 13;
  Tensor logits = random_tensor({3, 5, v}, 1, -4.0f, 4.0f);
  Tensor targets = random_ids({3, 5}, 2, static_cast<int32_t>(v));
  targets.data<int32_t>()[4] = kIgnore;
  targets.data<int32_t>()[11] = kIgnore;
  Tensor losses = f32({3, 5}), lse = f32({15});  // either per-row shape is accepted
  cpu().cross_entropy(logits, targets, kIgnore, losses, lse);
  const std::vector<double> x = to_double(logits);
  for (int64_t n = 0; n < 15; ++n) {
    const double l = lse_ref(x.data() + n * v, v);
    const int32_t t = targets.data<int32_t>()[n];
    EXPECT_NEAR(lse.data<float>()[n], l, 1e-6) << n;  // written for ignored rows too
    const double want = t == kIgnore ? 0.0 : l - x[n * v + t];
    EXPECT_NEAR(losses.data<float>()[n], want, 1e-6) << n;
  }
  EXPECT_EQ(losses.data<float>()[4], 0.0f);
}

TEST(CpuLoss, HugeLogitsAreStable) {
  // Shifting every logit by 1e4 would overflow exp without max subtraction; the loss is
  // shift-invariant.
  const int64_t n = 4, v = 7;
  Tensor logits = random_tensor({n, v}, 3, -3.0f, 3.0f);
  Tensor shifted = logits.clone();
  for (int64_t i = 0; i < n * v; ++i) shifted.data<float>()[i] += 10000.0f;
  Tensor targets = random_ids({n}, 4, static_cast<int32_t>(v));
  Tensor a = f32({n}), b = f32({n}), lse_a = f32({n}), lse_b = f32({n});
  cpu().cross_entropy(logits, targets, kIgnore, a, lse_a);
  cpu().cross_entropy(shifted, targets, kIgnore, b, lse_b);
  for (int64_t i = 0; i < n; ++i) {
    // The shifted logits were rounded to f32 at 1e4 (spacing ~1e-3): allow for that.
    EXPECT_NEAR(b.data<float>()[i], a.data<float>()[i], 2e-3);
    EXPECT_NEAR(lse_b.data<float>()[i], lse_a.data<float>()[i] + 10000.0f, 2e-3);
  }
}

TEST(CpuLoss, CrossEntropyBackwardMatchesFiniteDifferences) {
  const int64_t n = 7, v = 13;
  Tensor logits = random_tensor({n, v}, 5, -3.0f, 3.0f);
  Tensor targets = random_ids({n}, 6, static_cast<int32_t>(v));
  targets.data<int32_t>()[2] = kIgnore;
  Tensor dlosses = random_tensor({n}, 7);
  Tensor losses = f32({n}), lse = f32({n}), dlogits = f32({n, v});
  cpu().cross_entropy(logits, targets, kIgnore, losses, lse);
  cpu().cross_entropy_backward(logits, targets, lse, dlosses, kIgnore, dlogits);
  std::vector<double> want = numeric_gradient(to_double(logits), targets.to_vector<int32_t>(),
                                              to_double(dlosses), v, false);
  for (int64_t i = 0; i < n * v; ++i) {
    EXPECT_NEAR(dlogits.data<float>()[i], want[i], 1e-6) << i;
  }
  for (int64_t j = 0; j < v; ++j) EXPECT_EQ(dlogits.data<float>()[2 * v + j], 0.0f);
}

TEST(CpuLoss, GatherLogprobsIsMinusCrossEntropyAndNormalised) {
  const int64_t n = 5, v = 11;
  Tensor logits = random_tensor({n, v}, 8, -5.0f, 5.0f);
  Tensor targets = random_ids({n}, 9, static_cast<int32_t>(v));
  Tensor logp = f32({n}), lse = f32({n}), losses = f32({n}), lse_ce = f32({n});
  cpu().gather_logprobs(logits, targets, logp, lse);
  cpu().cross_entropy(logits, targets, kIgnore, losses, lse_ce);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(logp.data<float>()[i], -losses.data<float>()[i]);
  // Over every possible target the probabilities sum to 1.
  for (int64_t row = 0; row < n; ++row) {
    double total = 0.0;
    for (int32_t t = 0; t < v; ++t) {
      Tensor one_logits = logits.slice(row, row + 1);
      Tensor one_target = Tensor::from_vector(std::vector<int32_t>{t}, {1});
      Tensor lp = f32({1}), l = f32({1});
      cpu().gather_logprobs(one_logits, one_target, lp, l);
      total += std::exp(static_cast<double>(lp.data<float>()[0]));
    }
    EXPECT_NEAR(total, 1.0, 1e-6);
  }
}

TEST(CpuLoss, GatherLogprobsBackwardMatchesFiniteDifferences) {
  const int64_t v = 13;
  Tensor logits = random_tensor({2, 3, v}, 10, -3.0f, 3.0f);
  Tensor targets = random_ids({2, 3}, 11, static_cast<int32_t>(v));
  Tensor dlogp = random_tensor({2, 3}, 12);
  Tensor logp = f32({2, 3}), lse = f32({2, 3}), dlogits = f32({2, 3, v});
  cpu().gather_logprobs(logits, targets, logp, lse);
  cpu().gather_logprobs_backward(logits, targets, lse, dlogp, dlogits);
  std::vector<double> want =
      numeric_gradient(to_double(logits), targets.to_vector<int32_t>(), to_double(dlogp), v, true);
  for (int64_t i = 0; i < 6 * v; ++i) EXPECT_NEAR(dlogits.data<float>()[i], want[i], 1e-6) << i;
}

TEST(CpuLoss, BackwardInPlaceOverTheLogits) {
  const int64_t n = 4, v = 9;
  Tensor logits = random_tensor({n, v}, 13, -2.0f, 2.0f);
  Tensor targets = random_ids({n}, 14, static_cast<int32_t>(v));
  Tensor dl = random_tensor({n}, 15);
  Tensor losses = f32({n}), lse = f32({n}), want = f32({n, v});
  cpu().cross_entropy(logits, targets, kIgnore, losses, lse);
  cpu().cross_entropy_backward(logits, targets, lse, dl, kIgnore, want);
  cpu().cross_entropy_backward(logits, targets, lse, dl, kIgnore, logits);
  EXPECT_EQ(logits.to_vector<float>(), want.to_vector<float>());
}

TEST(CpuLoss, OutOfRangeTargetIsAnErrorNamingItAndItsRow) {
  const int64_t n = 4, v = 13;
  Tensor logits = random_tensor({n, v}, 16);
  Tensor losses = f32({n}), lse = f32({n}), dlogits = f32({n, v});
  for (int32_t bad : {13, -1, 1000}) {
    Tensor targets = Tensor::from_vector(std::vector<int32_t>{0, 3, bad, kIgnore}, {n});
    try {
      cpu().cross_entropy(logits, targets, kIgnore, losses, lse);
      ADD_FAILURE() << "target " << bad << " accepted";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("cross_entropy"), std::string::npos) << message;
      EXPECT_NE(message.find("targets[2] = " + std::to_string(bad)), std::string::npos) << message;
    }
    EXPECT_THROW(cpu().cross_entropy_backward(logits, targets, lse, lse, kIgnore, dlogits), Error);
    EXPECT_THROW(cpu().gather_logprobs(logits, targets, losses, lse), Error);
    EXPECT_THROW(cpu().gather_logprobs_backward(logits, targets, lse, lse, dlogits), Error);
  }
  // gather_logprobs has no ignore_index: -100 is out of range there.
  Tensor ignored = Tensor::from_vector(std::vector<int32_t>{0, 1, 2, kIgnore}, {n});
  EXPECT_THROW(cpu().gather_logprobs(logits, ignored, losses, lse), Error);
  EXPECT_NO_THROW(cpu().cross_entropy(logits, ignored, kIgnore, losses, lse));
}

TEST(CpuLoss, BadShapesAndDtypesAreErrors) {
  const int64_t n = 4, v = 6;
  Tensor logits = random_tensor({n, v}, 17);
  Tensor targets = Tensor::zeros({n}, DType::i32);
  Tensor losses = f32({n}), lse = f32({n}), dlogits = f32({n, v});
  EXPECT_THROW(cpu().cross_entropy(logits, Tensor::zeros({n}, DType::i64), kIgnore, losses, lse),
               Error);
  EXPECT_THROW(
      cpu().cross_entropy(logits, Tensor::zeros({n + 1}, DType::i32), kIgnore, losses, lse), Error);
  EXPECT_THROW(cpu().cross_entropy(logits, targets, kIgnore, f32({n, 1}), lse), Error);
  EXPECT_THROW(
      cpu().cross_entropy(Tensor::empty({n, v}, DType::bf16), targets, kIgnore, losses, lse),
      Error);
  EXPECT_THROW(cpu().cross_entropy_backward(logits, targets, lse, losses, kIgnore, f32({n, 5})),
               Error);
  EXPECT_THROW(cpu().cross_entropy_backward(logits, targets, f32({3}), losses, kIgnore, dlogits),
               Error);
  EXPECT_THROW(cpu().gather_logprobs(logits, targets, Tensor(), lse), Error);
  EXPECT_THROW(cpu().gather_logprobs_backward(logits, targets, lse, f32({2, 2}), dlogits), Error);
}

}  // namespace
}  // namespace rlaif
