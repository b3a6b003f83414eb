// LayerNorm and RMSNorm over the last dimension, forward and backward.
//
// Rows are independent, so the per-row work (statistics, out, dx) is parallel over rows with
// sequential double-precision sums inside a row. The parameter gradients dgamma and dbeta are sums
// over rows; to keep them deterministic they are parallel over blocks of columns instead, each
// column summing its rows sequentially in increasing row order.
//
// Math (x̂ is the normalised input, g = dout ⊙ gamma):
//   LayerNorm: x̂ = (x - mean)·rstd,  out = x̂ ⊙ gamma + beta
//              dx = rstd·(g - mean_d(g) - x̂·mean_d(g ⊙ x̂))
//   RMSNorm:   x̂ = x·rstd,           out = x̂ ⊙ gamma
//              dx = rstd·(g - x̂·mean_d(g ⊙ x̂))
//   dgamma = Σ_n dout ⊙ x̂,  dbeta = Σ_n dout.
// The backward passes rebuild x̂ from the saved f32 statistics, as every backend does.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_checks.h"

namespace rlaif {
namespace {

// Columns per task in the column-parallel parameter gradients: wide enough that each task reads
// whole cache lines of every row.
constexpr int64_t kColumnBlock = 64;

// Shapes of one normalisation call: n rows of d features.
struct Rows {
  int64_t n;
  int64_t d;
};

Rows check_input(const char* op, const Tensor& x, const Tensor& gamma) {
  cpu::expect(op, "x", x, DType::f32);
  const int64_t d = cpu::last_dim(op, "x", x);
  RLAIF_CHECK(d > 0, op, ": x ", x, " has no features to normalise");
  cpu::expect(op, "gamma", gamma, DType::f32, {d});
  return {cpu::rows(x), d};
}

// A per-row statistic (mean, rstd): f32, shaped [N] or as x without its last dimension.
void check_stat(const char* op, const char* arg, const Tensor& stat, const Tensor& x, int64_t n) {
  cpu::expect(op, arg, stat, DType::f32);
  Shape leading(x.shape().begin(), x.shape().end() - 1);
  RLAIF_CHECK(stat.shape() == Shape{n} || stat.shape() == leading, op, ": ", arg, " is ", stat,
              " but must have shape ", shape_str({n}), " (one value per row of x ", x, ")");
}

// Parameter gradients: for every column j, grad_scale[j] = Σ_n dout[n,j]·xhat(n, j) and
// grad_shift[j] = Σ_n dout[n,j], rows summed in increasing order. Either output may be null.
template <typename XHat>
void column_sums(Rows r, const float* dout, XHat xhat, float* grad_scale, float* grad_shift) {
  if (grad_scale == nullptr && grad_shift == nullptr) return;
  const int64_t blocks = (r.d + kColumnBlock - 1) / kColumnBlock;
  cpu::parallel_for(blocks, r.n * kColumnBlock, [&](int64_t blk) {
    const int64_t j0 = blk * kColumnBlock, j1 = std::min(r.d, j0 + kColumnBlock);
    double scale_acc[kColumnBlock] = {}, shift_acc[kColumnBlock] = {};
    for (int64_t n = 0; n < r.n; ++n) {
      const float* g = dout + n * r.d;
      for (int64_t j = j0; j < j1; ++j) {
        scale_acc[j - j0] += static_cast<double>(g[j]) * xhat(n, j);
        shift_acc[j - j0] += g[j];
      }
    }
    for (int64_t j = j0; j < j1; ++j) {
      if (grad_scale) grad_scale[j] = static_cast<float>(scale_acc[j - j0]);
      if (grad_shift) grad_shift[j] = static_cast<float>(shift_acc[j - j0]);
    }
  });
}

}  // namespace

void CpuBackend::layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                           const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  const char* op = "layernorm";
  const Rows r = check_input(op, x, gamma);
  if (beta.defined()) cpu::expect(op, "beta", beta, DType::f32, {r.d});
  cpu::expect(op, "out", out, DType::f32, x.shape());
  check_stat(op, "mean", mean, x, r.n);
  check_stat(op, "rstd", rstd, x, r.n);

  const float* xp = x.data<float>();
  const float* gp = gamma.data<float>();
  const float* bp = beta.defined() ? beta.data<float>() : nullptr;
  float* op_out = out.data<float>();
  float* mp = mean.data<float>();
  float* rp = rstd.data<float>();
  cpu::parallel_for(r.n, 4 * r.d, [&](int64_t n) {
    const float* xr = xp + n * r.d;
    float* yr = op_out + n * r.d;
    // Two passes (mean, then the mean squared deviation) avoid the cancellation of E[x²] - E[x]².
    double sum = 0.0;
    for (int64_t j = 0; j < r.d; ++j) sum += xr[j];
    const double mu = sum / static_cast<double>(r.d);
    double sq = 0.0;
    for (int64_t j = 0; j < r.d; ++j) sq += (xr[j] - mu) * (xr[j] - mu);
    const double rs = 1.0 / std::sqrt(sq / static_cast<double>(r.d) + eps);
    mp[n] = static_cast<float>(mu);
    rp[n] = static_cast<float>(rs);
    // Element j of out is written after the last read of element j of x: out may alias x.
    for (int64_t j = 0; j < r.d; ++j) {
      const double y = (xr[j] - mu) * rs * gp[j] + (bp ? bp[j] : 0.0);
      yr[j] = static_cast<float>(y);
    }
  });
}

void CpuBackend::layernorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                    const Tensor& rstd, const Tensor& dout, const Tensor& dx,
                                    const Tensor& dgamma, const Tensor& dbeta) {
  const char* op = "layernorm_backward";
  const Rows r = check_input(op, x, gamma);
  check_stat(op, "mean", mean, x, r.n);
  check_stat(op, "rstd", rstd, x, r.n);
  cpu::expect(op, "dout", dout, DType::f32, x.shape());
  cpu::expect(op, "dx", dx, DType::f32, x.shape());
  if (dgamma.defined()) cpu::expect(op, "dgamma", dgamma, DType::f32, {r.d});
  if (dbeta.defined()) cpu::expect(op, "dbeta", dbeta, DType::f32, {r.d});

  const float* xp = x.data<float>();
  const float* gp = gamma.data<float>();
  const float* mp = mean.data<float>();
  const float* rp = rstd.data<float>();
  const float* dy = dout.data<float>();
  auto xhat = [&](int64_t n, int64_t j) {
    return (static_cast<double>(xp[n * r.d + j]) - mp[n]) * rp[n];
  };

  // The parameter gradients first: dx may alias x or dout, which they read.
  column_sums(r, dy, xhat, dgamma.defined() ? dgamma.data<float>() : nullptr,
              dbeta.defined() ? dbeta.data<float>() : nullptr);

  float* dxp = dx.data<float>();
  cpu::parallel_for(r.n, 6 * r.d, [&](int64_t n) {
    const float* dyr = dy + n * r.d;
    // mean_d(g) and mean_d(g ⊙ x̂) with g = dout ⊙ gamma.
    double sum_g = 0.0, sum_gx = 0.0;
    for (int64_t j = 0; j < r.d; ++j) {
      const double g = static_cast<double>(dyr[j]) * gp[j];
      sum_g += g;
      sum_gx += g * xhat(n, j);
    }
    const double mean_g = sum_g / static_cast<double>(r.d);
    const double mean_gx = sum_gx / static_cast<double>(r.d);
    for (int64_t j = 0; j < r.d; ++j) {
      const double g = static_cast<double>(dyr[j]) * gp[j];
      dxp[n * r.d + j] = static_cast<float>(rp[n] * (g - mean_g - xhat(n, j) * mean_gx));
    }
  });
}

void CpuBackend::rmsnorm(const Tensor& x, const Tensor& gamma, float eps, const Tensor& out,
                         const Tensor& rstd) {
  const char* op = "rmsnorm";
  const Rows r = check_input(op, x, gamma);
  cpu::expect(op, "out", out, DType::f32, x.shape());
  check_stat(op, "rstd", rstd, x, r.n);

  const float* xp = x.data<float>();
  const float* gp = gamma.data<float>();
  float* yp = out.data<float>();
  float* rp = rstd.data<float>();
  cpu::parallel_for(r.n, 3 * r.d, [&](int64_t n) {
    const float* xr = xp + n * r.d;
    double sq = 0.0;
    for (int64_t j = 0; j < r.d; ++j) sq += static_cast<double>(xr[j]) * xr[j];
    const double rs = 1.0 / std::sqrt(sq / static_cast<double>(r.d) + eps);
    rp[n] = static_cast<float>(rs);
    for (int64_t j = 0; j < r.d; ++j) yp[n * r.d + j] = static_cast<float>(xr[j] * rs * gp[j]);
  });
}

void CpuBackend::rmsnorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& rstd,
                                  const Tensor& dout, const Tensor& dx, const Tensor& dgamma) {
  const char* op = "rmsnorm_backward";
  const Rows r = check_input(op, x, gamma);
  check_stat(op, "rstd", rstd, x, r.n);
  cpu::expect(op, "dout", dout, DType::f32, x.shape());
  cpu::expect(op, "dx", dx, DType::f32, x.shape());
  if (dgamma.defined()) cpu::expect(op, "dgamma", dgamma, DType::f32, {r.d});

  const float* xp = x.data<float>();
  const float* gp = gamma.data<float>();
  const float* rp = rstd.data<float>();
  const float* dy = dout.data<float>();
  auto xhat = [&](int64_t n, int64_t j) { return static_cast<double>(xp[n * r.d + j]) * rp[n]; };

  // The parameter gradient first: dx may alias x or dout, which it reads.
  column_sums(r, dy, xhat, dgamma.defined() ? dgamma.data<float>() : nullptr, nullptr);

  float* dxp = dx.data<float>();
  cpu::parallel_for(r.n, 5 * r.d, [&](int64_t n) {
    const float* dyr = dy + n * r.d;
    double sum_gx = 0.0;  // Σ_d g ⊙ x̂
    for (int64_t j = 0; j < r.d; ++j) sum_gx += static_cast<double>(dyr[j]) * gp[j] * xhat(n, j);
    const double mean_gx = sum_gx / static_cast<double>(r.d);
    for (int64_t j = 0; j < r.d; ++j) {
      const double g = static_cast<double>(dyr[j]) * gp[j];
      dxp[n * r.d + j] = static_cast<float>(rp[n] * (g - xhat(n, j) * mean_gx));
    }
  });
}

}  // namespace rlaif
