#include "kernels/cpu/cpu_backend.h"

#include "kernels/cpu/cpu_checks.h"

namespace rlaif {

void CpuBackend::softmax(const Tensor& x, const Tensor& out) {
  throw Error("cpu backend: softmax is not implemented yet");
}

void CpuBackend::log_softmax(const Tensor& x, const Tensor& out) {
  throw Error("cpu backend: log_softmax is not implemented yet");
}

void CpuBackend::softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  throw Error("cpu backend: softmax_backward is not implemented yet");
}

void CpuBackend::log_softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  throw Error("cpu backend: log_softmax_backward is not implemented yet");
}

}  // namespace rlaif
