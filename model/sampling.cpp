#include "model/sampling.h"

#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "runtime/error.h"
#include "runtime/philox.h"

namespace rlaif {

float sampling_uniform(uint64_t seed, uint64_t stream, uint64_t step) {
  // 2^32 steps per stream: streams never overlap for any realistic generation length.
  return philox_uniform(seed, (stream << 32) + step);
}

int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& options, float u) {
  RLAIF_CHECK(vocab > 0, "sample_token: empty vocabulary");
  // One implementation of the rules: the CPU backend's (Backend::sample_tokens), on a one-row
  // view of the caller's memory (read only: the const_cast is for Tensor's storage type). The
  // keep-alive token must be non-null: with none, the storage would free the caller's memory.
  Tensor row = Tensor::wrap(const_cast<float*>(logits), {1, vocab}, DType::f32, Device::cpu(),
                            std::make_shared<int>(0));
  Tensor uniform = Tensor::from_vector(std::vector<float>{u}, {1});
  Tensor token = Tensor::empty({1}, DType::i32);
  backend_for(Device::cpu())
      .sample_tokens(row, uniform, options.temperature, options.top_k, options.top_p, token);
  return token.data<int32_t>()[0];
}

}  // namespace rlaif
