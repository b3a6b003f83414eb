// Elementwise primitives of the CPU reference: unary ops and their derivatives, binary ops with
// suffix broadcasting, affine, clamp and where.
//
// Each element is independent, so every loop is a parallel_for over elements. Outputs may alias
// inputs (in-place use): every loop reads all the inputs of element i before writing element i.
// The one reduction here, db of a broadcast binary op, sums each output element sequentially
// in double, in row order, so it does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>
#include <vector>

#include "kernels/broadcast_rule.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_checks.h"

namespace rlaif {
namespace {

// √(2/π), GPT-2's GELU constant, as llm.c computes it (sqrtf of 2/π rounded to f32).
const float kGeluScale = std::sqrt(static_cast<float>(2.0 / std::numbers::pi));
constexpr float kGeluCubic = 0.044715f;

// tanh u and sech² u = 1 - tanh² u from one exp in double. glibc's tanhf (built on an old
// expm1f) costs ~30 ns an element on the 2-core Xeon this was measured on, and with it and coshf
// GELU's forward and backward took 19 and 30 ns an element ([256, 3072], 2 threads); with this,
// 8 and 11. With E = e^(-2|u|) ≤ 1 (no overflow; 0 once |u| > 372):
//   tanh |u| = (1 - E) / (1 + E),  sech² u = 4E / (1 + E)².
// 1 - E carries an absolute error of ~1e-16, under a float's rounding of tanh u for
// |u| ≥ 1e-4; below that tanh u = u - u³/3 holds to double precision. Rounded to float both are
// within an ulp of the exact values (CpuElementwise.TanhAndGeluAreWithinAnUlp). NaN stays NaN.
struct TanhSech2 {
  float tanh, sech2;
};
TanhSech2 tanh_sech2(float u) {
  const double a = std::fabs(static_cast<double>(u));
  double t, s;
  if (a < 1e-4) {
    t = a * (1.0 - a * a / 3.0);
    s = 1.0 - t * t;
  } else {
    const double e = std::exp(-2.0 * a), r = 1.0 / (1.0 + e);  // one division for both
    t = (1.0 - e) * r;
    s = 4.0 * e * r * r;
  }
  return {static_cast<float>(std::copysign(t, static_cast<double>(u))), static_cast<float>(s)};
}

// σ(x) without overflow: e^-|x| never exceeds 1.
float sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + std::exp(-x));
  float e = std::exp(x);
  return e / (1.0f + e);
}

float unary_forward(UnaryOp op, float x) {
  switch (op) {
    case UnaryOp::neg:
      return -x;
    case UnaryOp::exp:
      return std::exp(x);
    case UnaryOp::log:
      return std::log(x);
    case UnaryOp::sqrt:
      return std::sqrt(x);
    case UnaryOp::square:
      return x * x;
    case UnaryOp::abs:
      return std::fabs(x);
    case UnaryOp::relu:
      return x > 0.0f ? x : 0.0f;
    case UnaryOp::sigmoid:
      return sigmoid(x);
    // ln σ(x) = min(x, 0) - ln(1 + e^-|x|): the exponent is never positive, and log1p keeps
    // precision where σ(x) is close to 1.
    case UnaryOp::log_sigmoid:
      return std::fmin(x, 0.0f) - std::log1p(std::exp(-std::fabs(x)));
    case UnaryOp::tanh:
      return tanh_sech2(x).tanh;
    case UnaryOp::gelu_tanh: {
      float cube = kGeluCubic * x * x * x;
      return 0.5f * x * (1.0f + tanh_sech2(kGeluScale * (x + cube)).tanh);
    }
    case UnaryOp::silu:
      return x * sigmoid(x);
  }
  throw Error("unary: unknown op ", static_cast<int>(op));
}

// op'(x), given x and y = op(x); each op uses whichever form is the most accurate.
float unary_derivative(UnaryOp op, float x, float y) {
  switch (op) {
    case UnaryOp::neg:
      return -1.0f;
    case UnaryOp::exp:
      return y;
    case UnaryOp::log:
      return 1.0f / x;
    case UnaryOp::sqrt:
      return 0.5f / y;
    case UnaryOp::square:
      return 2.0f * x;
    case UnaryOp::abs:
      return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);  // sign, 0 at 0
    case UnaryOp::relu:
      return x > 0.0f ? 1.0f : 0.0f;
    case UnaryOp::sigmoid:
      return y * (1.0f - y);
    // d/dx ln σ(x) = 1 - σ(x) = σ(-x), which is accurate where 1 - σ(x) would cancel.
    case UnaryOp::log_sigmoid:
      return sigmoid(-x);
    case UnaryOp::tanh:
      return 1.0f - y * y;
    case UnaryOp::gelu_tanh: {
      // llm.c's gelu_backward: d/dx of 0.5·x·(1 + tanh(u)), u = s·(x + c·x³).
      // (The CUDA backend computes sech² as 1 / cosh² u: the same value to an ulp or two.)
      float cube = kGeluCubic * x * x * x;
      const TanhSech2 ts = tanh_sech2(kGeluScale * (x + cube));
      return 0.5f * (1.0f + ts.tanh) +
             x * 0.5f * ts.sech2 * kGeluScale * (1.0f + 3.0f * kGeluCubic * x * x);
    }
    case UnaryOp::silu: {
      // d/dx x·σ(x) = σ(x)·(1 + x·(1 - σ(x))).
      float s = sigmoid(x);
      return s * (1.0f + x * (1.0f - s));
    }
  }
  throw Error("unary_backward: unknown op ", static_cast<int>(op));
}

float binary_forward(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::add:
      return a + b;
    case BinaryOp::sub:
      return a - b;
    case BinaryOp::mul:
      return a * b;
    case BinaryOp::div:
      return a / b;
    // a on ties; NaN in either input propagates, as torch.minimum / torch.maximum.
    case BinaryOp::minimum:
      return (b < a || std::isnan(b)) ? b : a;
    case BinaryOp::maximum:
      return (b > a || std::isnan(b)) ? b : a;
  }
  throw Error("binary: unknown op ", static_cast<int>(op));
}

// (∂out/∂a, ∂out/∂b) · g for out = a ∘ b.
std::pair<float, float> binary_grads(BinaryOp op, float a, float b, float g) {
  switch (op) {
    case BinaryOp::add:
      return {g, g};
    case BinaryOp::sub:
      return {g, -g};
    case BinaryOp::mul:
      return {g * b, g * a};
    case BinaryOp::div:
      return {g / b, -g * a / (b * b)};
    // The gradient follows the value binary_forward picked, so ties go to a.
    case BinaryOp::minimum:
      return (b < a || std::isnan(b)) ? std::pair{0.0f, g} : std::pair{g, 0.0f};
    case BinaryOp::maximum:
      return (b > a || std::isnan(b)) ? std::pair{0.0f, g} : std::pair{g, 0.0f};
  }
  throw Error("binary_backward: unknown op ", static_cast<int>(op));
}

}  // namespace

void CpuBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out) {
  cpu::expect("unary", "x", x, DType::f32);
  cpu::expect("unary", "out", out, DType::f32, x.shape());
  const float* xp = x.data<float>();
  float* outp = out.data<float>();
  cpu::parallel_for(x.numel(), 8, [&](int64_t i) { outp[i] = unary_forward(op, xp[i]); });
}

void CpuBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy,
                                const Tensor& dx) {
  const char* name = "unary_backward";
  cpu::expect(name, "x", x, DType::f32);
  cpu::expect(name, "y", y, DType::f32, x.shape());
  cpu::expect(name, "dy", dy, DType::f32, x.shape());
  cpu::expect(name, "dx", dx, DType::f32, x.shape());
  const float* xp = x.data<float>();
  const float* yp = y.data<float>();
  const float* dyp = dy.data<float>();
  float* dxp = dx.data<float>();
  cpu::parallel_for(x.numel(), 8,
                    [&](int64_t i) { dxp[i] = dyp[i] * unary_derivative(op, xp[i], yp[i]); });
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  cpu::expect("binary", "a", a, DType::f32);
  cpu::expect("binary", "b", b, DType::f32);
  cpu::expect("binary", "out", out, DType::f32, a.shape());
  check_broadcast("binary", a, b);
  if (a.numel() == 0) return;
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  float* outp = out.data<float>();
  const int64_t nb = b.numel();
  cpu::parallel_for(a.numel(), 1,
                    [&](int64_t i) { outp[i] = binary_forward(op, ap[i], bp[i % nb]); });
}

void CpuBackend::binary_backward(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& dout,
                                 const Tensor& da, const Tensor& db) {
  const char* name = "binary_backward";
  cpu::expect(name, "a", a, DType::f32);
  cpu::expect(name, "b", b, DType::f32);
  cpu::expect(name, "dout", dout, DType::f32, a.shape());
  check_broadcast(name, a, b);
  if (da.defined()) cpu::expect(name, "da", da, DType::f32, a.shape());
  if (db.defined()) cpu::expect(name, "db", db, DType::f32, b.shape());
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  const float* gp = dout.data<float>();
  float* dap = da.defined() ? da.data<float>() : nullptr;
  float* dbp = db.defined() ? db.data<float>() : nullptr;
  const int64_t n = a.numel(), nb = b.numel();

  if (nb == n) {
    // No broadcasting: one pass, reading a, b and dout before writing da and db, so either
    // gradient may alias any input.
    cpu::parallel_for(n, 2, [&](int64_t i) {
      auto [ga, gb] = binary_grads(op, ap[i], bp[i], gp[i]);
      if (dap != nullptr) dap[i] = ga;
      if (dbp != nullptr) dbp[i] = gb;
    });
    return;
  }
  // Broadcast b: a is [rows, nb] and db[j] sums over the rows. db goes to a scratch buffer
  // first, so it is complete before da (which may alias dout or a) is written.
  std::vector<float> db_sum;
  if (dbp != nullptr) {
    const int64_t rows = n / nb;
    db_sum.resize(static_cast<size_t>(nb));
    cpu::parallel_for(nb, rows, [&](int64_t j) {
      double sum = 0.0;
      for (int64_t r = 0; r < rows; ++r) {
        int64_t i = r * nb + j;
        sum += binary_grads(op, ap[i], bp[j], gp[i]).second;
      }
      db_sum[static_cast<size_t>(j)] = static_cast<float>(sum);
    });
  }
  if (dap != nullptr) {
    cpu::parallel_for(
        n, 2, [&](int64_t i) { dap[i] = binary_grads(op, ap[i], bp[i % nb], gp[i]).first; });
  }
  if (dbp != nullptr) std::copy(db_sum.begin(), db_sum.end(), dbp);
}

void CpuBackend::affine(const Tensor& x, float alpha, float beta, const Tensor& out) {
  cpu::expect("affine", "x", x, DType::f32);
  cpu::expect("affine", "out", out, DType::f32, x.shape());
  const float* xp = x.data<float>();
  float* outp = out.data<float>();
  cpu::parallel_for(x.numel(), 1, [&](int64_t i) { outp[i] = alpha * xp[i] + beta; });
}

void CpuBackend::clamp(const Tensor& x, float lo, float hi, const Tensor& out) {
  cpu::expect("clamp", "x", x, DType::f32);
  cpu::expect("clamp", "out", out, DType::f32, x.shape());
  const float* xp = x.data<float>();
  float* outp = out.data<float>();
  // Written with comparisons that are false for NaN, so NaN passes through (as torch.clamp).
  cpu::parallel_for(x.numel(), 1, [&](int64_t i) {
    float v = xp[i] < lo ? lo : xp[i];
    outp[i] = v > hi ? hi : v;
  });
}

void CpuBackend::clamp_backward(const Tensor& x, float lo, float hi, const Tensor& dy,
                                const Tensor& dx) {
  cpu::expect("clamp_backward", "x", x, DType::f32);
  cpu::expect("clamp_backward", "dy", dy, DType::f32, x.shape());
  cpu::expect("clamp_backward", "dx", dx, DType::f32, x.shape());
  const float* xp = x.data<float>();
  const float* dyp = dy.data<float>();
  float* dxp = dx.data<float>();
  cpu::parallel_for(x.numel(), 1,
                    [&](int64_t i) { dxp[i] = (lo < xp[i] && xp[i] < hi) ? dyp[i] : 0.0f; });
}

void CpuBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  cpu::expect("where", "cond", cond, DType::u8);
  cpu::expect("where", "a", a, DType::f32, cond.shape());
  cpu::expect("where", "b", b, DType::f32, cond.shape());
  cpu::expect("where", "out", out, DType::f32, cond.shape());
  const uint8_t* cp = cond.data<uint8_t>();
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  float* outp = out.data<float>();
  cpu::parallel_for(cond.numel(), 1, [&](int64_t i) { outp[i] = cp[i] != 0 ? ap[i] : bp[i]; });
}

}  // namespace rlaif
