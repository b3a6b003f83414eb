// A Backend that wraps another and times every primitive, so a training step's time can be
// broken down by primitive and shape (`rlaif bench train --profile`).
//
// Each call is timed between two marks in the inner backend's queue (kernels/queue_mark.h): on a
// GPU, CUDA events around the work the call queues, read back later, so the device time of a
// kernel is charged to the primitive that queued it and the host still runs ahead of the device
// as in an unprofiled step; on the CPU, the host clock. Work queued outside any primitive
// (uploads, copies to the host) is charged to nobody. When the device waits for the host (the
// queue ran dry), a call's interval also holds that wait; the time between calls — the wall
// time minus the sum — is then idle device time, which tells a host-bound step from a
// device-bound one.
//
// Calls are aggregated under a label: the primitive's name plus a short shape/dtype signature
// ("matmul 8192x3072x768 bf16 nt", "attention B8 T1024 H12 Dh64 bf16"), with the call count,
// total seconds, and cheap FLOP and byte estimates (FLOPs for matmul and attention only; bytes
// as the sum of the tensors' sizes, each counted once).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/backend.h"

namespace rlaif {

// The aggregate of the calls under one label.
struct ProfileEntry {
  std::string name;    // "matmul 8192x3072x768 bf16 nt"
  int64_t calls = 0;   // number of calls
  double seconds = 0;  // total host-clock seconds between the fencing synchronizes
  double flops = 0;    // total FLOPs (0 where not estimated)
  double bytes = 0;    // total bytes of the tensors passed (0 where not estimated)
};

class ProfilingBackend final : public Backend {
 public:
  // inner must outlive this wrapper (backends live until exit).
  explicit ProfilingBackend(Backend& inner);

  Backend& inner() const { return inner_; }
  // Starts timing calls (a wrapper starts disabled and then only forwards); also measures an
  // empty interval between two marks, the floor under every call's time.
  void enable();
  // Stops timing; calls are still forwarded. The figures gathered so far are kept.
  void disable();
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  // Forgets every figure gathered so far.
  void reset();

  // The aggregates, largest total time first (ties by name, so the order is stable).
  std::vector<ProfileEntry> entries() const;
  // Sum of the seconds of every entry.
  double total_seconds() const;
  // Seconds of one empty mark → mark interval, measured at the last enable().
  double mark_floor_seconds() const { return mark_floor_s_; }

  // Prints the `top` largest entries (all when top <= 0) as a table: calls, total ms, % of the
  // total, µs per call, TFLOP/s and GB/s where estimated. With wall_seconds > 0 (the wall time of
  // the profiled region) percentages are of that instead, and a last row shows the time outside
  // any primitive (wall minus the sum: host, autograd and allocation overhead).
  void report(std::ostream& os, int top = 30, double wall_seconds = 0.0) const;

  Device device() const override { return inner_.device(); }
  std::string name() const override { return inner_.name(); }
  void synchronize() override { inner_.synchronize(); }
  std::unique_ptr<QueueMark> mark() override { return inner_.mark(); }

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
  // A timed call whose marks have not been read yet (reading waits for the device).
  struct PendingCall {
    std::string label;
    double flops = 0, bytes = 0;
    std::unique_ptr<QueueMark> start, stop;
  };
  // Calls held before their marks are read: enough for a few training steps of a large model
  // without a mid-step wait, few enough to bound the events held.
  static constexpr size_t kMaxPending = 16384;

  // Runs `call`; when enabled, marks the queue before and after it and adds its time (once the
  // marks are read) to the aggregate whose label, FLOPs and bytes `describe()` returns (called
  // only then, and only after `call` returned: a disabled wrapper formats nothing, and the
  // shapes have been checked).
  template <typename Describe, typename Call>
  void timed(Describe&& describe, Call&& call);
  // Reads the pending calls' marks into stats_. Needs mutex_.
  void resolve_pending() const;

  Backend& inner_;
  std::atomic<bool> enabled_{false};
  double mark_floor_s_ = 0.0;
  // Guards pending_ and stats_: primitives may be called from several threads.
  mutable std::mutex mutex_;
  mutable std::vector<PendingCall> pending_;
  mutable std::map<std::string, ProfileEntry> stats_;
};

// Switches profiling on for a device: from now on backend_for(device) returns this device's
// ProfilingBackend (created on first use, wrapping the real backend, and never destroyed) with
// timing enabled. Figures from earlier profiling of the device are kept; call reset() to drop
// them. Throws what backend_for throws when the device cannot be used.
ProfilingBackend* enable_profiling(Device device);
// Switches it off: backend_for(device) returns the real backend again, and the wrapper (which
// code may still hold a reference to) stops timing. Its figures stay readable. A no-op when
// profiling was not on.
void disable_profiling(Device device);

}  // namespace rlaif
