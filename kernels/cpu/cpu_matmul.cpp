#include "kernels/cpu/cpu_backend.h"

#include "kernels/cpu/cpu_checks.h"

namespace rlaif {

void CpuBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out, bool trans_a, bool trans_b, const Tensor& bias, float alpha, float beta) {
  throw Error("cpu backend: matmul is not implemented yet");
}

}  // namespace rlaif
