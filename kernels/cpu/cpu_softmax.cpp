// Softmax and log-softmax over the last dimension, and their backward passes, for the CPU
// reference.
//
// Rows are independent and run in parallel; inside a row everything is sequential. Subtracting
// the row maximum keeps every exponent ≤ 0, so nothing overflows. Exponentials, sums and the
// final quotient are computed in double and rounded to f32 once, since this backend is the
// numerical reference the others are measured against.
#include <cmath>
#include <limits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_checks.h"

namespace rlaif {
namespace {

// Checks x (float, at least 1-D) and the other tensor of its shape; returns D, the row length.
int64_t check_rows(const char* op, const char* x_name, const Tensor& x, const char* out_name,
                   const Tensor& out) {
  cpu::expect(op, x_name, x, DType::f32);
  const int64_t D = cpu::last_dim(op, x_name, x);
  cpu::expect(op, out_name, out, DType::f32, x.shape());
  return D;
}

double row_max(const float* x, int64_t D) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t d = 0; d < D; ++d) m = x[d] > m ? x[d] : m;
  return m;
}

// Σ_d exp(x[d] - m) in double.
double sum_exp(const float* x, int64_t D, double m) {
  double sum = 0.0;
  for (int64_t d = 0; d < D; ++d) sum += std::exp(x[d] - m);
  return sum;
}

}  // namespace

void CpuBackend::softmax(const Tensor& x, const Tensor& out) {
  const int64_t D = check_rows("softmax", "x", x, "out", out);
  const float* xp = x.data<float>();
  float* outp = out.data<float>();
  // A row of all -inf has no defined maximum-subtracted form and gives NaN, as in torch.
  cpu::parallel_for(cpu::rows(x), 4 * D, [&](int64_t r) {
    const float* xr = xp + r * D;
    float* yr = outp + r * D;
    const double m = row_max(xr, D);
    const double sum = sum_exp(xr, D, m);
    // Element d is read before it is written: out may alias x.
    for (int64_t d = 0; d < D; ++d) yr[d] = static_cast<float>(std::exp(xr[d] - m) / sum);
  });
}

void CpuBackend::log_softmax(const Tensor& x, const Tensor& out) {
  const int64_t D = check_rows("log_softmax", "x", x, "out", out);
  const float* xp = x.data<float>();
  float* outp = out.data<float>();
  cpu::parallel_for(cpu::rows(x), 3 * D, [&](int64_t r) {
    const float* xr = xp + r * D;
    float* yr = outp + r * D;
    const double m = row_max(xr, D);
    // log softmax(x)[d] = x[d] - m - log Σ exp(x - m), rounded once.
    const double shift = m + std::log(sum_exp(xr, D, m));
    for (int64_t d = 0; d < D; ++d) yr[d] = static_cast<float>(xr[d] - shift);
  });
}

void CpuBackend::softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  const int64_t D = check_rows("softmax_backward", "y", y, "dy", dy);
  cpu::expect("softmax_backward", "dx", dx, DType::f32, y.shape());
  const float* yp = y.data<float>();
  const float* dyp = dy.data<float>();
  float* dxp = dx.data<float>();
  cpu::parallel_for(cpu::rows(y), 2 * D, [&](int64_t r) {
    const float* yr = yp + r * D;
    const float* dyr = dyp + r * D;
    float* dxr = dxp + r * D;
    double dot = 0.0;  // Σ_d dy·y
    for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(dyr[d]) * yr[d];
    // The row's sum is complete before dx is written: dx may alias y or dy.
    for (int64_t d = 0; d < D; ++d) dxr[d] = static_cast<float>(yr[d] * (dyr[d] - dot));
  });
}

void CpuBackend::log_softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  const int64_t D = check_rows("log_softmax_backward", "y", y, "dy", dy);
  cpu::expect("log_softmax_backward", "dx", dx, DType::f32, y.shape());
  const float* yp = y.data<float>();
  const float* dyp = dy.data<float>();
  float* dxp = dx.data<float>();
  cpu::parallel_for(cpu::rows(y), 3 * D, [&](int64_t r) {
    const float* yr = yp + r * D;
    const float* dyr = dyp + r * D;
    float* dxr = dxp + r * D;
    double total = 0.0;  // Σ_d dy
    for (int64_t d = 0; d < D; ++d) total += dyr[d];
    for (int64_t d = 0; d < D; ++d) {
      dxr[d] = static_cast<float>(dyr[d] - std::exp(static_cast<double>(yr[d])) * total);
    }
  });
}

}  // namespace rlaif
