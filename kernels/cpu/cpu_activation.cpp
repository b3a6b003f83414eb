// SwiGLU, the gated activation of the Llama MLP, forward and backward.
//
//   out   = silu(gate) ⊙ up,  silu(g) = g·σ(g)
//   dgate = dout ⊙ up ⊙ silu'(gate),  silu'(g) = σ(g)·(1 + g·(1 - σ(g)))
//   dup   = dout ⊙ silu(gate)
// Elementwise, computed in double and rounded once. Each element reads all its inputs before
// writing any output, so outputs may alias inputs (in-place use).
#include <cmath>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_checks.h"

namespace rlaif {
namespace {

// σ(g) without overflow: e^-g is only evaluated for g ≥ 0 and e^g only for g < 0.
double sigmoid(double g) {
  if (g >= 0.0) return 1.0 / (1.0 + std::exp(-g));
  const double e = std::exp(g);
  return e / (1.0 + e);
}

}  // namespace

void CpuBackend::swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) {
  const char* op = "swiglu";
  cpu::expect(op, "gate", gate, DType::f32);
  cpu::expect(op, "up", up, DType::f32, gate.shape());
  cpu::expect(op, "out", out, DType::f32, gate.shape());

  const float* g = gate.data<float>();
  const float* u = up.data<float>();
  float* o = out.data<float>();
  cpu::parallel_for(gate.numel(), 16, [&](int64_t i) {
    const double x = g[i];
    o[i] = static_cast<float>(x * sigmoid(x) * u[i]);
  });
}

void CpuBackend::swiglu_backward(const Tensor& gate, const Tensor& up, const Tensor& dout,
                                 const Tensor& dgate, const Tensor& dup) {
  const char* op = "swiglu_backward";
  cpu::expect(op, "gate", gate, DType::f32);
  cpu::expect(op, "up", up, DType::f32, gate.shape());
  cpu::expect(op, "dout", dout, DType::f32, gate.shape());
  cpu::expect(op, "dgate", dgate, DType::f32, gate.shape());
  cpu::expect(op, "dup", dup, DType::f32, gate.shape());

  const float* g = gate.data<float>();
  const float* u = up.data<float>();
  const float* dy = dout.data<float>();
  float* dg = dgate.data<float>();
  float* du = dup.data<float>();
  cpu::parallel_for(gate.numel(), 20, [&](int64_t i) {
    const double x = g[i], up_i = u[i], dy_i = dy[i];
    const double s = sigmoid(x);
    const double silu = x * s;
    const double dsilu = s * (1.0 + x * (1.0 - s));
    dg[i] = static_cast<float>(dy_i * up_i * dsilu);
    du[i] = static_cast<float>(dy_i * silu);
  });
}

}  // namespace rlaif
