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
};

}  // namespace rlaif
