#include "kernels/cpu/cpu_backend.h"

#include "kernels/cpu/cpu_checks.h"

namespace rlaif {

void CpuBackend::layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  throw Error("cpu backend: layernorm is not implemented yet");
}

void CpuBackend::layernorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd, const Tensor& dout, const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta) {
  throw Error("cpu backend: layernorm_backward is not implemented yet");
}

void CpuBackend::rmsnorm(const Tensor& x, const Tensor& gamma, float eps, const Tensor& out, const Tensor& rstd) {
  throw Error("cpu backend: rmsnorm is not implemented yet");
}

void CpuBackend::rmsnorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& rstd, const Tensor& dout, const Tensor& dx, const Tensor& dgamma) {
  throw Error("cpu backend: rmsnorm_backward is not implemented yet");
}

}  // namespace rlaif
