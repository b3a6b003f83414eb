#include "kernels/cpu/cpu_backend.h"

#include "kernels/cpu/cpu_checks.h"

namespace rlaif {

void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& segment_ids, int64_t kv_len, float scale, const Tensor& out, const Tensor& lse) {
  throw Error("cpu backend: attention is not implemented yet");
}

void CpuBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& segment_ids, int64_t kv_len, float scale, const Tensor& out, const Tensor& lse, const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  throw Error("cpu backend: attention_backward is not implemented yet");
}

}  // namespace rlaif
