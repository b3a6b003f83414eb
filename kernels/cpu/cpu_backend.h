// The CPU reference backend: f32 throughout, GEMM through OpenBLAS, everything else plain loops
// parallelised with OpenMP over rows. It is the ground truth the conformance suite compares
// every other backend with, so clarity beats speed here, while staying fast enough to train
// small models (parallel over rows, sequential and fixed-order inside a row: deterministic
// whatever the thread count).
//
// The implementations are spread over one file per family (cpu_memory.cpp, cpu_matmul.cpp,
// cpu_elementwise.cpp, cpu_reduce.cpp, cpu_softmax.cpp, cpu_embedding.cpp, cpu_norm.cpp,
// cpu_activation.cpp, cpu_rope.cpp, cpu_attention.cpp, cpu_optimizer.cpp, cpu_loss.cpp,
// cpu_sampling.cpp).
#pragma once

#include "kernels/backend.h"

namespace rlaif {

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::cpu(); }
  std::string name() const override { return "cpu"; }

  // Every required primitive of kernels/backend.h.
  RLAIF_BACKEND_PRIMITIVES(RLAIF_DECLARE_OVERRIDE, RLAIF_SKIP_PRIMITIVE)

  // An optional primitive done better than the base class's composition: each gradient is scaled
  // as it is read, without the scratch copy.
  void adamw_steps(std::span<const AdamWTensors> params, const AdamWHyper& h,
                   float grad_scale) override;
};

}  // namespace rlaif
