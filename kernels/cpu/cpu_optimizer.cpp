// Optimizer primitives of the CPU reference: the AdamW update and the squared norm used for
// gradient clipping.
//
// AdamW (Loshchilov & Hutter, 2019, "Decoupled Weight Decay Regularization") is Adam (Kingma &
// Ba, 2015, "Adam: A Method for Stochastic Optimization") with the weight decay taken out of the
// gradient and applied to the parameter directly. Per element, with t the 1-based step:
//   θ ← θ·(1 − lr·wd)
//   m ← β1·m + (1 − β1)·g                      (first moment: a running mean of g)
//   v ← β2·v + (1 − β2)·g²                     (second moment: a running mean of g²)
//   m̂ = m / (1 − β1^t);  v̂ = v / (1 − β2^t)    (bias correction: m and v start at 0)
//   θ ← θ − lr · m̂ / (√v̂ + eps)
//
// Precision: the reference reproduces PyTorch's torch.optim.AdamW (foreach=False) on f32 tensors
// operation by operation rather than computing in double. PyTorch evaluates the per-step scalars
// (1 − lr·wd, lr / (1 − β1^t), √(1 − β2^t)) as Python floats, i.e. in double, and hands them to
// f32 kernels, which round them to f32; every per-element operation then rounds to f32:
//   θ = θ · c_decay                          param.mul_(1 - lr*wd)
//   m = lerp(m, g, w) with w = 1 − β1        exp_avg.lerp_(grad, 1 - beta1)
//   v = v · β2;  v = v + ((1 − β2) · g) · g  exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
//   d = √v / c_bc2 + eps                     (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
//   θ = θ + ((−step_size) · m) / d           param.addcdiv_(exp_avg, d, -step_size)
// Matching that order (rather than computing in double and rounding once) is what makes the
// result agree with PyTorch to the last bit on its scalar path, and lets a GPU backend with
// correctly rounded sqrt and division agree with this reference exactly. (The hyperparameters
// arrive as doubles for the same reason: 1 − β2 computed from f32(0.999) would be off by 1.3e-5.)
// PyTorch's vectorised CPU lerp may use a fused multiply-add, so bitwise agreement with PyTorch
// itself holds for its scalar path only; elsewhere the two differ by an ulp or so.
//
// The squared norm accumulates x² in double over fixed chunks of kNormChunk elements; the chunk
// partial sums are added in chunk order, so the result is the same whatever the thread count.
#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_checks.h"
#include "runtime/element_convert.h"
#include "runtime/half.h"

namespace rlaif {
namespace {

// Elements per partial sum of squared_norm. Part of the result's definition (it fixes the order
// of the double additions), so changing it changes the last bits of the result.
constexpr int64_t kNormChunk = 8192;

// Calls f(T{}) with T the C++ element type of a float dtype (runtime/element_convert.h's visit).
template <typename F>
void visit_float(const char* op, const char* arg, const Tensor& t, F&& f) {
  RLAIF_CHECK(is_floating(t.dtype()), op, ": ", arg, " is ", t,
              " but must be a float tensor (f32, bf16 or f16)");
  visit_dtype(t.dtype(), op, [&](auto tag) {
    if constexpr (is_float_v<decltype(tag)>) f(tag);
  });
}

// The per-step scalars, computed in double and rounded to f32 once, as PyTorch does.
struct AdamWScalars {
  float decay;     // 1 − lr·wd
  float w1;        // 1 − β1, the lerp weight
  float beta2;     // β2
  float one_m_b2;  // 1 − β2
  float bc2_sqrt;  // √(1 − β2^t)
  float eps;
  float neg_step;  // −lr / (1 − β1^t)
};

AdamWScalars adamw_scalars(const AdamWHyper& h) {
  const double t = static_cast<double>(h.step);
  AdamWScalars s;
  s.decay = static_cast<float>(1.0 - h.lr * h.weight_decay);
  s.w1 = static_cast<float>(1.0 - h.beta1);
  s.beta2 = static_cast<float>(h.beta2);
  s.one_m_b2 = static_cast<float>(1.0 - h.beta2);
  s.bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(h.beta2, t)));
  s.eps = static_cast<float>(h.eps);
  s.neg_step = static_cast<float>(-(h.lr / (1.0 - std::pow(h.beta1, t))));
  return s;
}

// One element of the update, in PyTorch's f32 order (see the file comment). Returns the new θ;
// m and v are updated through their references.
inline float adamw_element(float theta, float g, float& m, float& v, const AdamWScalars& s) {
  theta = theta * s.decay;
  // torch.lerp: self + w·(end − self) for |w| < 0.5, else end − (end − self)·(1 − w); the
  // second form keeps precision when the weight is close to 1.
  const float diff = g - m;
  m = std::fabs(s.w1) < 0.5f ? m + s.w1 * diff : g - diff * (1.0f - s.w1);
  v = v * s.beta2;
  v = v + s.one_m_b2 * g * g;
  const float denom = std::sqrt(v) / s.bc2_sqrt + s.eps;
  return theta + s.neg_step * m / denom;
}

}  // namespace

namespace {

// adamw_step's argument checks, for op = "adamw_step" or one entry of adamw_steps.
void check_adamw(const char* op, const Tensor& param, const Tensor& grad, const Tensor& m,
                 const Tensor& v, const Tensor& master) {
  RLAIF_CHECK(param.defined(), op, ": param is undefined");
  const bool has_master = master.defined();
  // Without a master copy the update happens on param itself, which must then hold f32.
  cpu::expect(op, "param", param, has_master ? param.dtype() : DType::f32);
  cpu::expect(op, "grad", grad, param.dtype(), param.shape());
  cpu::expect(op, "m", m, DType::f32, param.shape());
  cpu::expect(op, "v", v, DType::f32, param.shape());
  if (has_master) cpu::expect(op, "master", master, DType::f32, param.shape());
  visit_float(op, "param", param, [](auto) {});
}

// The update of one parameter (arguments checked). The gradient is read as affine(g, grad_scale,
// 0) in its own dtype would leave it: g·grad_scale rounded to f32 (+ 0, which only turns −0 into
// +0, and the update cannot tell those apart), then to the gradient's dtype.
void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                  const Tensor& master, const AdamWScalars& s, float grad_scale) {
  const int64_t n = param.numel();
  float* mp = m.data<float>();
  float* vp = v.data<float>();
  visit_float("adamw_step", "param", param, [&](auto tag) {
    using T = decltype(tag);
    T* pp = param.data<T>();
    const T* gp = grad.data<T>();
    const bool scaled = grad_scale != 1.0f;
    auto gradient = [&](int64_t i) {
      return scaled ? widen(narrow<T>(widen(gp[i]) * grad_scale)) : widen(gp[i]);
    };
    if (master.defined()) {
      float* wp = master.data<float>();
      cpu::parallel_for(n, 16, [&](int64_t i) {
        wp[i] = adamw_element(wp[i], gradient(i), mp[i], vp[i], s);
        pp[i] = narrow<T>(wp[i]);
      });
    } else {
      // T is float here (checked by the caller); the cast only satisfies other instantiations.
      cpu::parallel_for(n, 16, [&](int64_t i) {
        pp[i] = narrow<T>(adamw_element(widen(pp[i]), gradient(i), mp[i], vp[i], s));
      });
    }
  });
}

}  // namespace

void CpuBackend::adamw_step(const Tensor& param, const Tensor& grad, const Tensor& m,
                            const Tensor& v, const Tensor& master, const AdamWHyper& h) {
  check_adamw("adamw_step", param, grad, m, v, master);
  RLAIF_CHECK(h.step >= 1, "adamw_step: step is ", h.step, " but must be ≥ 1 (it is 1-based)");
  adamw_update(param, grad, m, v, master, adamw_scalars(h), 1.0f);
}

void CpuBackend::adamw_steps(std::span<const AdamWTensors> params, const AdamWHyper& h,
                             float grad_scale) {
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string op = "adamw_steps (entry " + std::to_string(i) + ")";
    const AdamWTensors& e = params[i];
    check_adamw_entry(op, e);
    check_adamw(op.c_str(), e.param, e.grad, e.m, e.v, e.master);
  }
  RLAIF_CHECK(h.step >= 1, "adamw_steps: step is ", h.step, " but must be ≥ 1 (it is 1-based)");
  for (const AdamWTensors& e : params) {
    AdamWHyper he = h;
    he.weight_decay = e.weight_decay;
    adamw_update(e.param, e.grad, e.m, e.v, e.master, adamw_scalars(he), grad_scale);
  }
}

void CpuBackend::squared_norm(const Tensor& x, const Tensor& out) {
  const char* op = "squared_norm";
  RLAIF_CHECK(x.defined(), op, ": x is undefined");
  cpu::expect(op, "x", x, x.dtype());
  cpu::expect(op, "out", out, DType::f32, Shape{});
  const int64_t n = x.numel();
  const int64_t chunks = (n + kNormChunk - 1) / kNormChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  visit_float(op, "x", x, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    cpu::parallel_for(chunks, kNormChunk, [&](int64_t c) {
      const int64_t begin = c * kNormChunk, end = std::min(n, begin + kNormChunk);
      double sum = 0.0;
      // An f32 value squared is exact in double (24 + 24 mantissa bits ≤ 53).
      for (int64_t i = begin; i < end; ++i) {
        const double e = widen(xp[i]);
        sum += e * e;
      }
      partial[static_cast<size_t>(c)] = sum;
    });
  });
  double total = 0.0;
  for (double p : partial) total += p;
  out.data<float>()[0] = static_cast<float>(total);
}

}  // namespace rlaif
