#include "kernels/cpu/cpu_backend.h"

#include "kernels/cpu/cpu_checks.h"

namespace rlaif {

void CpuBackend::embedding(const Tensor& weight, const Tensor& ids, const Tensor& out) {
  throw Error("cpu backend: embedding is not implemented yet");
}

void CpuBackend::embedding_backward(const Tensor& ids, const Tensor& dout, const Tensor& dweight) {
  throw Error("cpu backend: embedding_backward is not implemented yet");
}

}  // namespace rlaif
