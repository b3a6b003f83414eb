// CPU LayerNorm and RMSNorm, forward and backward, checked against a double-precision forward
// written here and central finite differences of it.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/backend.h"
#include "tests/kernels/conformance.h"
#include "tests/support/backends.h"
#include "tests/support/threads.h"

namespace rlaif {
namespace {

using testing::random_tensor;

using test::cpu;

using test::ScopedThreads;

std::vector<double> to_double(const Tensor& t) {
  std::vector<float> f = t.to_vector<float>();
  return {f.begin(), f.end()};
}

// The forward passes in double, as backend.h states them. beta empty = no shift; rms = RMSNorm.
// Optional per-row statistics out (mean is 0 for RMSNorm).
std::vector<double> norm_forward(bool rms, const std::vector<double>& x,
                                 const std::vector<double>& gamma, const std::vector<double>& beta,
                                 int64_t d, double eps, std::vector<double>* mean = nullptr,
                                 std::vector<double>* rstd = nullptr) {
  const int64_t n = static_cast<int64_t>(x.size()) / d;
  std::vector<double> out(x.size());
  if (mean) mean->assign(static_cast<size_t>(n), 0.0);
  if (rstd) rstd->assign(static_cast<size_t>(n), 0.0);
  for (int64_t r = 0; r < n; ++r) {
    double mu = 0.0;
    if (!rms) {
      for (int64_t j = 0; j < d; ++j) mu += x[r * d + j];
      mu /= static_cast<double>(d);
    }
    double var = 0.0;
    for (int64_t j = 0; j < d; ++j) var += (x[r * d + j] - mu) * (x[r * d + j] - mu);
    const double rs = 1.0 / std::sqrt(var / static_cast<double>(d) + eps);
    for (int64_t j = 0; j < d; ++j) {
      out[r * d + j] = (x[r * d + j] - mu) * rs * gamma[j] + (beta.empty() ? 0.0 : beta[j]);
    }
    if (mean) (*mean)[r] = mu;
    if (rstd) (*rstd)[r] = rs;
  }
  return out;
}

// L = Σ out ⊙ w with out = the forward pass: its gradient with respect to out is w (the dout fed
// to the backward pass).
double weighted_loss(bool rms, const std::vector<double>& x, const std::vector<double>& gamma,
                     const std::vector<double>& beta, int64_t d, double eps,
                     const std::vector<double>& w) {
  const std::vector<double> out = norm_forward(rms, x, gamma, beta, d, eps);
  double s = 0.0;
  for (size_t i = 0; i < out.size(); ++i) s += out[i] * w[i];
  return s;
}

// Central difference of L with respect to element i of *param.
template <typename Loss>
double central_difference(std::vector<double>* param, size_t i, Loss loss) {
  const double h = 1e-6, saved = (*param)[i];
  (*param)[i] = saved + h;
  const double up = loss();
  (*param)[i] = saved - h;
  const double down = loss();
  (*param)[i] = saved;
  return (up - down) / (2 * h);
}

void expect_near_all(const Tensor& got, const std::vector<double>& want, double tol,
                     const char* what) {
  std::vector<float> g = got.to_vector<float>();
  ASSERT_EQ(g.size(), want.size()) << what;
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_NEAR(g[i], want[i], tol * (1.0 + std::fabs(want[i]))) << what << "[" << i << "]";
  }
}

TEST(CpuNorm, LayerNormMatchesDoubleForwardWithLeadingDimensions) {
  const int64_t d = 13;
  const float eps = 1e-5f;
  Tensor x = random_tensor({3, 7, d}, 1, -2.0f, 3.0f);
  Tensor gamma = random_tensor({d}, 2, 0.5f, 1.5f);
  Tensor beta = random_tensor({d}, 3);
  for (bool with_beta : {true, false}) {
    Tensor out = Tensor::empty({3, 7, d}, DType::f32);
    Tensor mean = Tensor::empty({3, 7}, DType::f32);  // leading-dimension shape
    Tensor rstd = Tensor::empty({21}, DType::f32);    // flat [N] shape
    cpu().layernorm(x, gamma, with_beta ? beta : Tensor(), eps, out, mean, rstd);
    std::vector<double> want_mean, want_rstd;
    std::vector<double> want = norm_forward(false, to_double(x), to_double(gamma),
                                            with_beta ? to_double(beta) : std::vector<double>{}, d,
                                            eps, &want_mean, &want_rstd);
    expect_near_all(out, want, 1e-6, "out");
    expect_near_all(mean, want_mean, 1e-6, "mean");
    expect_near_all(rstd, want_rstd, 1e-6, "rstd");
  }
}

TEST(CpuNorm, LayerNormOfAConstantRowIsBeta) {
  // x̂ = 0, so out = beta exactly, and rstd = 1/√eps.
  const int64_t d = 6;
  Tensor x = Tensor::from_vector(std::vector<float>(2 * d, 3.25f), {2, d});
  Tensor gamma = random_tensor({d}, 4);
  Tensor beta = random_tensor({d}, 5);
  Tensor out = Tensor::empty({2, d}, DType::f32);
  Tensor mean = Tensor::empty({2}, DType::f32), rstd = Tensor::empty({2}, DType::f32);
  cpu().layernorm(x, gamma, beta, 1e-4f, out, mean, rstd);
  for (int64_t i = 0; i < 2 * d; ++i) EXPECT_EQ(out.data<float>()[i], beta.data<float>()[i % d]);
  EXPECT_EQ(mean.data<float>()[1], 3.25f);
  EXPECT_NEAR(rstd.data<float>()[0], 100.0f, 1e-3);
}

TEST(CpuNorm, LayerNormInPlace) {
  Tensor x = random_tensor({5, 13}, 6);
  Tensor gamma = random_tensor({13}, 7), beta = random_tensor({13}, 8);
  Tensor mean = Tensor::empty({5}, DType::f32), rstd = Tensor::empty({5}, DType::f32);
  Tensor want = Tensor::empty({5, 13}, DType::f32);
  cpu().layernorm(x, gamma, beta, 1e-5f, want, mean, rstd);
  cpu().layernorm(x, gamma, beta, 1e-5f, x, mean, rstd);
  EXPECT_EQ(x.to_vector<float>(), want.to_vector<float>());
}

TEST(CpuNorm, LayerNormBackwardMatchesFiniteDifferences) {
  const int64_t n = 7, d = 13;
  const double eps = 1e-5;
  Tensor x = random_tensor({n, d}, 9, -2.0f, 2.0f);
  Tensor gamma = random_tensor({d}, 10, 0.5f, 1.5f), beta = random_tensor({d}, 11);
  Tensor dout = random_tensor({n, d}, 12);
  Tensor out = Tensor::empty({n, d}, DType::f32);
  Tensor mean = Tensor::empty({n}, DType::f32), rstd = Tensor::empty({n}, DType::f32);
  cpu().layernorm(x, gamma, beta, static_cast<float>(eps), out, mean, rstd);
  Tensor dx = Tensor::empty({n, d}, DType::f32);
  Tensor dgamma = Tensor::empty({d}, DType::f32), dbeta = Tensor::empty({d}, DType::f32);
  cpu().layernorm_backward(x, gamma, mean, rstd, dout, dx, dgamma, dbeta);

  std::vector<double> xs = to_double(x), gs = to_double(gamma), bs = to_double(beta);
  const std::vector<double> w = to_double(dout);
  auto loss = [&] { return weighted_loss(false, xs, gs, bs, d, eps, w); };
  std::vector<double> want_dx(xs.size()), want_dgamma(gs.size()), want_dbeta(bs.size());
  for (size_t i = 0; i < xs.size(); ++i) want_dx[i] = central_difference(&xs, i, loss);
  for (size_t i = 0; i < gs.size(); ++i) want_dgamma[i] = central_difference(&gs, i, loss);
  for (size_t i = 0; i < bs.size(); ++i) want_dbeta[i] = central_difference(&bs, i, loss);
  expect_near_all(dx, want_dx, 1e-5, "dx");
  expect_near_all(dgamma, want_dgamma, 1e-5, "dgamma");
  expect_near_all(dbeta, want_dbeta, 1e-5, "dbeta");

  // The parameter gradients are optional and do not change dx.
  Tensor dx_only = Tensor::empty({n, d}, DType::f32);
  cpu().layernorm_backward(x, gamma, mean, rstd, dout, dx_only, Tensor(), Tensor());
  EXPECT_EQ(dx_only.to_vector<float>(), dx.to_vector<float>());
}

TEST(CpuNorm, RmsNormMatchesDoubleForward) {
  const int64_t d = 13;
  const float eps = 1e-6f;
  Tensor x = random_tensor({2, 3, d}, 13, -3.0f, 2.0f);
  Tensor gamma = random_tensor({d}, 14, 0.5f, 1.5f);
  Tensor out = Tensor::empty({2, 3, d}, DType::f32);
  Tensor rstd = Tensor::empty({2, 3}, DType::f32);
  cpu().rmsnorm(x, gamma, eps, out, rstd);
  std::vector<double> want_rstd;
  std::vector<double> want =
      norm_forward(true, to_double(x), to_double(gamma), {}, d, eps, nullptr, &want_rstd);
  expect_near_all(out, want, 1e-6, "out");
  expect_near_all(rstd, want_rstd, 1e-6, "rstd");
}

TEST(CpuNorm, RmsNormBackwardMatchesFiniteDifferences) {
  const int64_t n = 5, d = 13;
  const double eps = 1e-6;
  Tensor x = random_tensor({n, d}, 15, -2.0f, 2.0f);
  Tensor gamma = random_tensor({d}, 16, 0.5f, 1.5f);
  Tensor dout = random_tensor({n, d}, 17);
  Tensor out = Tensor::empty({n, d}, DType::f32), rstd = Tensor::empty({n}, DType::f32);
  cpu().rmsnorm(x, gamma, static_cast<float>(eps), out, rstd);
  Tensor dx = Tensor::empty({n, d}, DType::f32), dgamma = Tensor::empty({d}, DType::f32);
  cpu().rmsnorm_backward(x, gamma, rstd, dout, dx, dgamma);

  std::vector<double> xs = to_double(x), gs = to_double(gamma);
  const std::vector<double> w = to_double(dout);
  auto loss = [&] { return weighted_loss(true, xs, gs, {}, d, eps, w); };
  std::vector<double> want_dx(xs.size()), want_dgamma(gs.size());
  for (size_t i = 0; i < xs.size(); ++i) want_dx[i] = central_difference(&xs, i, loss);
  for (size_t i = 0; i < gs.size(); ++i) want_dgamma[i] = central_difference(&gs, i, loss);
  expect_near_all(dx, want_dx, 1e-5, "dx");
  expect_near_all(dgamma, want_dgamma, 1e-5, "dgamma");

  Tensor dx_only = Tensor::empty({n, d}, DType::f32);
  cpu().rmsnorm_backward(x, gamma, rstd, dout, dx_only, Tensor());
  EXPECT_EQ(dx_only.to_vector<float>(), dx.to_vector<float>());
}

TEST(CpuNorm, ParameterGradientsAreBitwiseIndependentOfThreadCount) {
  const int64_t n = 777, d = 301;  // large enough to fork, columns not a multiple of the block
  Tensor x = random_tensor({n, d}, 18), gamma = random_tensor({d}, 19);
  Tensor dout = random_tensor({n, d}, 20);
  Tensor out = Tensor::empty({n, d}, DType::f32);
  Tensor mean = Tensor::empty({n}, DType::f32), rstd = Tensor::empty({n}, DType::f32);
  cpu().layernorm(x, gamma, Tensor(), 1e-5f, out, mean, rstd);
  auto run = [&](int threads) {
    ScopedThreads scoped(threads);
    Tensor dx = Tensor::empty({n, d}, DType::f32);
    Tensor dgamma = Tensor::empty({d}, DType::f32), dbeta = Tensor::empty({d}, DType::f32);
    cpu().layernorm_backward(x, gamma, mean, rstd, dout, dx, dgamma, dbeta);
    std::vector<float> all = dx.to_vector<float>();
    for (float v : dgamma.to_vector<float>()) all.push_back(v);
    for (float v : dbeta.to_vector<float>()) all.push_back(v);
    Tensor rdx = Tensor::empty({n, d}, DType::f32), rdgamma = Tensor::empty({d}, DType::f32);
    cpu().rmsnorm_backward(x, gamma, rstd, dout, rdx, rdgamma);
    for (float v : rdx.to_vector<float>()) all.push_back(v);
    for (float v : rdgamma.to_vector<float>()) all.push_back(v);
    return all;
  };
  EXPECT_EQ(run(1), run(3));
}

TEST(CpuNorm, BadArgumentsAreErrors) {
  Tensor x = random_tensor({4, 6}, 21), gamma = random_tensor({6}, 22);
  Tensor out = Tensor::empty({4, 6}, DType::f32);
  Tensor mean = Tensor::empty({4}, DType::f32), rstd = Tensor::empty({4}, DType::f32);
  auto f32 = [](const Shape& s) { return Tensor::empty(s, DType::f32); };
  // gamma, beta of the wrong length; x not f32; out or statistics of the wrong shape.
  EXPECT_THROW(cpu().layernorm(x, f32({5}), Tensor(), 1e-5f, out, mean, rstd), Error);
  EXPECT_THROW(cpu().layernorm(x, gamma, f32({7}), 1e-5f, out, mean, rstd), Error);
  EXPECT_THROW(
      cpu().layernorm(Tensor::empty({4, 6}, DType::bf16), gamma, Tensor(), 1e-5f, out, mean, rstd),
      Error);
  EXPECT_THROW(cpu().layernorm(x, gamma, Tensor(), 1e-5f, f32({6, 4}), mean, rstd), Error);
  EXPECT_THROW(cpu().layernorm(x, gamma, Tensor(), 1e-5f, out, f32({5}), rstd), Error);
  EXPECT_THROW(cpu().layernorm(x, gamma, Tensor(), 1e-5f, out, mean, Tensor()), Error);
  EXPECT_THROW(cpu().layernorm_backward(x, gamma, mean, rstd, out, f32({4, 5}), Tensor(), Tensor()),
               Error);
  EXPECT_THROW(cpu().layernorm_backward(x, gamma, mean, rstd, out, f32({4, 6}), f32({5}), Tensor()),
               Error);
  EXPECT_THROW(cpu().rmsnorm(x, gamma, 1e-5f, out, f32({2, 2})), Error);
  EXPECT_THROW(cpu().rmsnorm(x, f32({6, 1}), 1e-5f, out, rstd), Error);
  EXPECT_THROW(cpu().rmsnorm_backward(x, gamma, rstd, f32({4, 7}), f32({4, 6}), Tensor()), Error);
  EXPECT_THROW(
      cpu().rmsnorm_backward(x, gamma, rstd, out, f32({4, 6}), Tensor::empty({6}, DType::f16)),
      Error);
}

}  // namespace
}  // namespace rlaif
