#include "kernels/cpu/cpu_backend.h"

#include "kernels/cpu/cpu_checks.h"

namespace rlaif {

void CpuBackend::cross_entropy(const Tensor& logits, const Tensor& targets, int ignore_index, const Tensor& losses, const Tensor& lse) {
  throw Error("cpu backend: cross_entropy is not implemented yet");
}

void CpuBackend::cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& dlosses, int ignore_index, const Tensor& dlogits) {
  throw Error("cpu backend: cross_entropy_backward is not implemented yet");
}

void CpuBackend::gather_logprobs(const Tensor& logits, const Tensor& targets, const Tensor& logp, const Tensor& lse) {
  throw Error("cpu backend: gather_logprobs is not implemented yet");
}

void CpuBackend::gather_logprobs_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& dlogp, const Tensor& dlogits) {
  throw Error("cpu backend: gather_logprobs_backward is not implemented yet");
}

}  // namespace rlaif
