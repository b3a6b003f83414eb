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
//
// The fused add_layernorm / add_rmsnorm write a row of sum = x + residual (f32 adds, as binary's)
// and then run the very row function the plain norm runs on it, so their numbers are those of
// add then norm bit for bit. accumulate_dx adds the f32-rounded gradient into dx, the one f32
// addition binary(add) would do afterwards.
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

// One row of LayerNorm: the statistics of xr, then yr (which may alias xr: element j of yr is
// written after the last read of element j of xr).
struct LayerNormRow {
  const float* gamma;
  const float* beta;  // null: no shift
  float eps;
  int64_t d;

  void operator()(const float* xr, float* yr, float* mean, float* rstd) const {
    // Two passes (mean, then the mean squared deviation) avoid the cancellation of E[x²] - E[x]².
    double sum = 0.0;
    for (int64_t j = 0; j < d; ++j) sum += xr[j];
    const double mu = sum / static_cast<double>(d);
    double sq = 0.0;
    for (int64_t j = 0; j < d; ++j) sq += (xr[j] - mu) * (xr[j] - mu);
    const double rs = 1.0 / std::sqrt(sq / static_cast<double>(d) + eps);
    *mean = static_cast<float>(mu);
    *rstd = static_cast<float>(rs);
    for (int64_t j = 0; j < d; ++j) {
      const double y = (xr[j] - mu) * rs * gamma[j] + (beta ? beta[j] : 0.0);
      yr[j] = static_cast<float>(y);
    }
  }
};

// One row of RMSNorm (yr may alias xr, as above).
struct RmsNormRow {
  const float* gamma;
  float eps;
  int64_t d;

  void operator()(const float* xr, float* yr, float* rstd) const {
    double sq = 0.0;
    for (int64_t j = 0; j < d; ++j) sq += static_cast<double>(xr[j]) * xr[j];
    const double rs = 1.0 / std::sqrt(sq / static_cast<double>(d) + eps);
    *rstd = static_cast<float>(rs);
    for (int64_t j = 0; j < d; ++j) yr[j] = static_cast<float>(xr[j] * rs * gamma[j]);
  }
};

// The arguments of add_layernorm / add_rmsnorm beyond the plain norm's: residual and sum of x's
// shape, f32.
void check_add(const char* op, const Tensor& x, const Tensor& residual, const Tensor& sum) {
  cpu::expect(op, "residual", residual, DType::f32, x.shape());
  cpu::expect(op, "sum", sum, DType::f32, x.shape());
}

// sr = xr + rr over one row, in f32 as binary(add) computes it; sr may alias xr or rr.
void add_row(const float* xr, const float* rr, float* sr, int64_t d) {
  for (int64_t j = 0; j < d; ++j) sr[j] = xr[j] + rr[j];
}

// dx = v, or dx + v in f32 when accumulating (v already rounded to f32, as a separate dx tensor
// would hold it).
inline void store_dx(float* dx, double v, bool accumulate) {
  const float g = static_cast<float>(v);
  *dx = accumulate ? *dx + g : g;
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

  const LayerNormRow row{gamma.data<float>(), beta.defined() ? beta.data<float>() : nullptr, eps,
                         r.d};
  const float* xp = x.data<float>();
  float* yp = out.data<float>();
  float* mp = mean.data<float>();
  float* rp = rstd.data<float>();
  cpu::parallel_for(r.n, 4 * r.d,
                    [&](int64_t n) { row(xp + n * r.d, yp + n * r.d, mp + n, rp + n); });
}

void CpuBackend::layernorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                    const Tensor& rstd, const Tensor& dout, const Tensor& dx,
                                    const Tensor& dgamma, const Tensor& dbeta, bool accumulate_dx) {
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
      store_dx(dxp + n * r.d + j, rp[n] * (g - mean_g - xhat(n, j) * mean_gx), accumulate_dx);
    }
  });
}

void CpuBackend::rmsnorm(const Tensor& x, const Tensor& gamma, float eps, const Tensor& out,
                         const Tensor& rstd) {
  const char* op = "rmsnorm";
  const Rows r = check_input(op, x, gamma);
  cpu::expect(op, "out", out, DType::f32, x.shape());
  check_stat(op, "rstd", rstd, x, r.n);

  const RmsNormRow row{gamma.data<float>(), eps, r.d};
  const float* xp = x.data<float>();
  float* yp = out.data<float>();
  float* rp = rstd.data<float>();
  cpu::parallel_for(r.n, 3 * r.d, [&](int64_t n) { row(xp + n * r.d, yp + n * r.d, rp + n); });
}

void CpuBackend::rmsnorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& rstd,
                                  const Tensor& dout, const Tensor& dx, const Tensor& dgamma,
                                  bool accumulate_dx) {
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
      store_dx(dxp + n * r.d + j, rp[n] * (g - xhat(n, j) * mean_gx), accumulate_dx);
    }
  });
}

void CpuBackend::add_layernorm(const Tensor& x, const Tensor& residual, const Tensor& gamma,
                               const Tensor& beta, float eps, const Tensor& sum, const Tensor& out,
                               const Tensor& mean, const Tensor& rstd) {
  const char* op = "add_layernorm";
  const Rows r = check_input(op, x, gamma);
  check_add(op, x, residual, sum);
  if (beta.defined()) cpu::expect(op, "beta", beta, DType::f32, {r.d});
  cpu::expect(op, "out", out, DType::f32, x.shape());
  check_stat(op, "mean", mean, x, r.n);
  check_stat(op, "rstd", rstd, x, r.n);

  const LayerNormRow row{gamma.data<float>(), beta.defined() ? beta.data<float>() : nullptr, eps,
                         r.d};
  const float* xp = x.data<float>();
  const float* rsd = residual.data<float>();
  float* sp = sum.data<float>();
  float* yp = out.data<float>();
  float* mp = mean.data<float>();
  float* rp = rstd.data<float>();
  cpu::parallel_for(r.n, 5 * r.d, [&](int64_t n) {
    const int64_t at = n * r.d;
    add_row(xp + at, rsd + at, sp + at, r.d);  // the row stays in cache for the norm
    row(sp + at, yp + at, mp + n, rp + n);
  });
}

void CpuBackend::add_rmsnorm(const Tensor& x, const Tensor& residual, const Tensor& gamma,
                             float eps, const Tensor& sum, const Tensor& out, const Tensor& rstd) {
  const char* op = "add_rmsnorm";
  const Rows r = check_input(op, x, gamma);
  check_add(op, x, residual, sum);
  cpu::expect(op, "out", out, DType::f32, x.shape());
  check_stat(op, "rstd", rstd, x, r.n);

  const RmsNormRow row{gamma.data<float>(), eps, r.d};
  const float* xp = x.data<float>();
  const float* rsd = residual.data<float>();
  float* sp = sum.data<float>();
  float* yp = out.data<float>();
  float* rp = rstd.data<float>();
  cpu::parallel_for(r.n, 4 * r.d, [&](int64_t n) {
    const int64_t at = n * r.d;
    add_row(xp + at, rsd + at, sp + at, r.d);
    row(sp + at, yp + at, rp + n);
  });
}

}  // namespace rlaif
