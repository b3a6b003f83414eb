#include "kernels/cpu/cpu_backend.h"

#include "kernels/cpu/cpu_checks.h"

namespace rlaif {

void CpuBackend::swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) {
  throw Error("cpu backend: swiglu is not implemented yet");
}

void CpuBackend::swiglu_backward(const Tensor& gate, const Tensor& up, const Tensor& dout, const Tensor& dgate, const Tensor& dup) {
  throw Error("cpu backend: swiglu_backward is not implemented yet");
}

}  // namespace rlaif
