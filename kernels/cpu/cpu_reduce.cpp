#include "kernels/cpu/cpu_backend.h"

#include "kernels/cpu/cpu_checks.h"

namespace rlaif {

void CpuBackend::reduce(ReduceOp op, const Tensor& x, int dim, const Tensor& out) {
  throw Error("cpu backend: reduce is not implemented yet");
}

void CpuBackend::reduce_backward(ReduceOp op, const Tensor& x, const Tensor& y, const Tensor& dy, int dim, const Tensor& dx) {
  throw Error("cpu backend: reduce_backward is not implemented yet");
}

void CpuBackend::argmax(const Tensor& x, const Tensor& out) {
  throw Error("cpu backend: argmax is not implemented yet");
}

void CpuBackend::masked_reduce(const Tensor& x, const Tensor& mask, bool mean, const Tensor& out) {
  throw Error("cpu backend: masked_reduce is not implemented yet");
}

void CpuBackend::masked_reduce_backward(const Tensor& mask, const Tensor& dy, bool mean, const Tensor& dx) {
  throw Error("cpu backend: masked_reduce_backward is not implemented yet");
}

}  // namespace rlaif
