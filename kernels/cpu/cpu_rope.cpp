#include "kernels/cpu/cpu_backend.h"

#include "kernels/cpu/cpu_checks.h"

namespace rlaif {

void CpuBackend::rope(const Tensor& x, const Tensor& positions, float theta, bool inverse, const Tensor& out) {
  throw Error("cpu backend: rope is not implemented yet");
}

}  // namespace rlaif
