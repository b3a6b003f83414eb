// The CUDA backend: every primitive of kernels/backend.h on an NVIDIA GPU.
//
// Float tensors may be f32 or bf16 (all the float tensors of one call share a dtype, except the
// ones backend.h fixes to f32: statistics, losses, lse, AdamW moments and master weights).
// Arithmetic and accumulation are f32 whatever the storage dtype; GEMMs go through cuBLASLt, the
// rest are hand-written kernels, one family per file with its forward and backward, named as the
// CPU reference's file of the same family (cpu_X.cpp, cuda_X.cu): cuda_memory.cu, cuda_matmul.cu,
// cuda_elementwise.cu, cuda_reduce.cu, cuda_softmax.cu, cuda_embedding.cu, cuda_norm.cu (plain
// and fused with the residual add), cuda_activation.cu, cuda_rope.cu, cuda_attention.cu (with the
// tensor-core path in cuda_attention_tc.cu and cuda_attention_tc_backward.cu), cuda_optimizer.cu (AdamW and the squared norm of
// gradient clipping), cuda_loss.cu, cuda_sampling.cu.
//
// Work is queued on the legacy default stream, so a host copy (Tensor::to, item) waits for every
// kernel before it, and synchronize() is the only other wait. Kernels avoid atomics wherever the
// result would depend on their order, so results are bitwise reproducible run after run.
//
// This header is plain C++ (no CUDA types), so that the rest of the project can name the class.
#pragma once

#include "kernels/backend.h"
#include "kernels/device_registry.h"
#include "runtime/allocator.h"

namespace rlaif::cuda {

class CudaBackend final : public Backend {
 public:
  // Selects device `index`; throws Error when it does not exist or no driver is present.
  explicit CudaBackend(int index);
  ~CudaBackend() override;

  Device device() const override { return Device::cuda(index_); }
  std::string name() const override { return "cuda"; }
  void synchronize() override;
  // A CUDA event on the default stream (cuda_timing.cu): marking does not wait for the device.
  std::unique_ptr<QueueMark> mark() override;

  // Every required primitive of kernels/backend.h.
  RLAIF_BACKEND_PRIMITIVES(RLAIF_DECLARE_OVERRIDE, RLAIF_SKIP_PRIMITIVE)

  // Optional primitives done better than the base class's composition.
  // GELU in cuBLASLt's epilogue (GELU_AUX_BIAS: pre is its aux output) where the shapes allow,
  // else the composition; RLAIF_GELU_EPILOGUE=0 turns the fusion off (to measure both).
  void linear_gelu(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& pre,
                   const Tensor& out) override;
  // Dozens of tensors per launch (cuda_optimizer.cu).
  void adamw_steps(std::span<const AdamWTensors> params, const AdamWHyper& h,
                   float grad_scale) override;
  void squared_norms(std::span<const Tensor> xs, const Tensor& out) override;

 private:
  int index_;
};

// The backend factory and the caching device memory manager (cuda_allocator.cu) of the "cuda"
// device type, and its registration (cuda_registration.cpp), which kernels/device_registry.cpp
// installs when the CUDA backend is compiled in.
Backend* make_cuda_backend(int index);
DeviceMemory* cuda_device_memory();
DeviceTypeRegistration cuda_registration();

// Bytes held by live CUDA tensors on all devices, the peak since start (or since the last
// reset), and bytes cached by the allocator for reuse; for benchmarks and `rlaif version`.
size_t cuda_bytes_in_use();
size_t cuda_peak_bytes();
void cuda_reset_peak_bytes();
size_t cuda_bytes_cached();

// cuBLASLt's version (cublasLtGetVersion), opening the library first if no GPU product has yet
// (kernels/cuda/cublaslt_library.h: it is opened on first use, not linked). Error naming the
// library or a missing function.
size_t cublaslt_version();

}  // namespace rlaif::cuda
