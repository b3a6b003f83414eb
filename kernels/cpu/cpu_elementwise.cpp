#include "kernels/cpu/cpu_backend.h"

#include "kernels/cpu/cpu_checks.h"

namespace rlaif {

void CpuBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out) {
  throw Error("cpu backend: unary is not implemented yet");
}

void CpuBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  throw Error("cpu backend: unary_backward is not implemented yet");
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  throw Error("cpu backend: binary is not implemented yet");
}

void CpuBackend::binary_backward(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& dout, const Tensor& da, const Tensor& db) {
  throw Error("cpu backend: binary_backward is not implemented yet");
}

void CpuBackend::affine(const Tensor& x, float alpha, float beta, const Tensor& out) {
  throw Error("cpu backend: affine is not implemented yet");
}

void CpuBackend::clamp(const Tensor& x, float lo, float hi, const Tensor& out) {
  throw Error("cpu backend: clamp is not implemented yet");
}

void CpuBackend::clamp_backward(const Tensor& x, float lo, float hi, const Tensor& dy, const Tensor& dx) {
  throw Error("cpu backend: clamp_backward is not implemented yet");
}

void CpuBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  throw Error("cpu backend: where is not implemented yet");
}

}  // namespace rlaif
