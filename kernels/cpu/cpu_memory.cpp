#include "kernels/cpu/cpu_backend.h"

#include "kernels/cpu/cpu_checks.h"

namespace rlaif {

void CpuBackend::fill(const Tensor& out, double value) {
  throw Error("cpu backend: fill is not implemented yet");
}

void CpuBackend::copy(const Tensor& src, const Tensor& dst) {
  throw Error("cpu backend: copy is not implemented yet");
}

void CpuBackend::cast(const Tensor& src, const Tensor& dst) {
  throw Error("cpu backend: cast is not implemented yet");
}

void CpuBackend::random_uniform(const Tensor& out, uint64_t seed, uint64_t offset, float lo, float hi) {
  throw Error("cpu backend: random_uniform is not implemented yet");
}

void CpuBackend::random_normal(const Tensor& out, uint64_t seed, uint64_t offset, float mean, float std) {
  throw Error("cpu backend: random_normal is not implemented yet");
}

void CpuBackend::concat(const std::vector<Tensor>& inputs, const Tensor& out) {
  throw Error("cpu backend: concat is not implemented yet");
}

}  // namespace rlaif
