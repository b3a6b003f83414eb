// The CUDA backend: every primitive of kernels/backend.h on an NVIDIA GPU.
//
// Float tensors may be f32 or bf16 (all the float tensors of one call share a dtype, except the
// ones backend.h fixes to f32: statistics, losses, lse, AdamW moments and master weights).
// Arithmetic and accumulation are f32 whatever the storage dtype; GEMMs go through cuBLASLt, the
// rest are hand-written kernels, one family per file (cuda_memory.cu, cuda_matmul.cu,
// cuda_elementwise.cu, cuda_reduce.cu, cuda_softmax.cu, cuda_embedding.cu, cuda_add_norm.cu (norm
// forwards, fused with the residual add or not), cuda_norm.cu (norm backwards),
// cuda_activation.cu, cuda_rope.cu, cuda_attention_*.cu, cuda_optimizer.cu, cuda_loss.cu,
// cuda_sampling.cu).
//
// Work is queued on the legacy default stream, so a host copy (Tensor::to, item) waits for every
// kernel before it, and synchronize() is the only other wait. Kernels avoid atomics wherever the
// result would depend on their order, so results are bitwise reproducible run after run.
//
// This header is plain C++ (no CUDA types), so that the rest of the project can name the class.
#pragma once

#include "kernels/backend.h"
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

  void fill(const Tensor& out, double value) override;
  void copy(const Tensor& src, const Tensor& dst) override;
  void cast(const Tensor& src, const Tensor& dst) override;
  void random_uniform(const Tensor& out, uint64_t seed, uint64_t offset, float lo,
                      float hi) override;
  void random_normal(const Tensor& out, uint64_t seed, uint64_t offset, float mean,
                     float std) override;
  void concat(const std::vector<Tensor>& inputs, const Tensor& out) override;

  void matmul(const Tensor& a, const Tensor& b, const Tensor& out, bool trans_a, bool trans_b,
              const Tensor& bias, float alpha, float beta) override;
  // GELU in cuBLASLt's epilogue (GELU_AUX_BIAS: pre is its aux output) where the shapes allow,
  // else the composition; RLAIF_GELU_EPILOGUE=0 turns the fusion off (to measure both).
  void linear_gelu(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& pre,
                   const Tensor& out) override;

  void unary(UnaryOp op, const Tensor& x, const Tensor& out) override;
  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy,
                      const Tensor& dx) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void binary_backward(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& dout,
                       const Tensor& da, const Tensor& db) override;
  void affine(const Tensor& x, float alpha, float beta, const Tensor& out) override;
  void clamp(const Tensor& x, float lo, float hi, const Tensor& out) override;
  void clamp_backward(const Tensor& x, float lo, float hi, const Tensor& dy,
                      const Tensor& dx) override;
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) override;

  void reduce(ReduceOp op, const Tensor& x, int dim, const Tensor& out) override;
  void reduce_backward(ReduceOp op, const Tensor& x, const Tensor& y, const Tensor& dy, int dim,
                       const Tensor& dx) override;
  void argmax(const Tensor& x, const Tensor& out) override;
  void masked_reduce(const Tensor& x, const Tensor& mask, bool mean, const Tensor& out) override;
  void masked_reduce_backward(const Tensor& mask, const Tensor& dy, bool mean,
                              const Tensor& dx) override;

  void softmax(const Tensor& x, const Tensor& out) override;
  void log_softmax(const Tensor& x, const Tensor& out) override;
  void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) override;
  void log_softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) override;

  void embedding(const Tensor& weight, const Tensor& ids, const Tensor& out) override;
  void embedding_backward(const Tensor& ids, const Tensor& dout, const Tensor& dweight,
                          bool accumulate = false) override;

  void layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                 const Tensor& out, const Tensor& mean, const Tensor& rstd) override;
  void layernorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                          const Tensor& rstd, const Tensor& dout, const Tensor& dx,
                          const Tensor& dgamma, const Tensor& dbeta, bool accumulate_dx) override;
  void rmsnorm(const Tensor& x, const Tensor& gamma, float eps, const Tensor& out,
               const Tensor& rstd) override;
  void rmsnorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& rstd,
                        const Tensor& dout, const Tensor& dx, const Tensor& dgamma,
                        bool accumulate_dx) override;
  void add_layernorm(const Tensor& x, const Tensor& residual, const Tensor& gamma,
                     const Tensor& beta, float eps, const Tensor& sum, const Tensor& out,
                     const Tensor& mean, const Tensor& rstd) override;
  void add_rmsnorm(const Tensor& x, const Tensor& residual, const Tensor& gamma, float eps,
                   const Tensor& sum, const Tensor& out, const Tensor& rstd) override;

  void swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) override;
  void swiglu_backward(const Tensor& gate, const Tensor& up, const Tensor& dout,
                       const Tensor& dgate, const Tensor& dup) override;

  void rope(const Tensor& x, const Tensor& positions, float theta, bool inverse,
            const Tensor& out) override;

  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& segment_ids,
                 int64_t kv_len, int64_t window, float scale, const Tensor& out,
                 const Tensor& lse) override;
  void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                          const Tensor& segment_ids, int64_t kv_len, int64_t window, float scale,
                          const Tensor& out, const Tensor& lse, const Tensor& dout,
                          const Tensor& dq, const Tensor& dk, const Tensor& dv) override;

  void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                  const Tensor& master, const AdamWHyper& h) override;
  void squared_norm(const Tensor& x, const Tensor& out) override;
  void adamw_steps(std::span<const AdamWTensors> params, const AdamWHyper& h,
                   float grad_scale) override;
  void squared_norms(std::span<const Tensor> xs, const Tensor& out) override;

  void cross_entropy(const Tensor& logits, const Tensor& targets, int ignore_index,
                     const Tensor& losses, const Tensor& lse) override;
  void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                              const Tensor& dlosses, int ignore_index,
                              const Tensor& dlogits) override;
  void gather_logprobs(const Tensor& logits, const Tensor& targets, const Tensor& logp,
                       const Tensor& lse) override;
  void gather_logprobs_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                const Tensor& dlogp, const Tensor& dlogits) override;

  void sample_tokens(const Tensor& logits, const Tensor& uniforms, float temperature, int64_t top_k,
                     float top_p, const Tensor& out) override;

 private:
  int index_;
};

// The factory backend.cpp registers, and the device memory manager it installs.
Backend* make_cuda_backend(int index);
DeviceMemory* cuda_device_memory();

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
