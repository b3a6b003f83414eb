// GradientBuckets: the gradient reduction of a data-parallel step, one bucket at a time, each
// started as soon as its gradients are final, so that on a GPU the collectives run alongside the
// rest of the backward pass (Li et al., 2020, "PyTorch Distributed: Experiences on Accelerating
// Data Parallel Training", §3.2: bucketing and overlapping computation with communication).
//
// The parameters (one dtype, one device) lie end to end in a flat vector of P elements, cut into
// buckets of `span` elements; the last is shorter, and a parameter may straddle buckets. A bucket
// is reduced through a buffer of `span` elements: its gradients are packed in (zeros for a
// parameter without one), the collective runs on the buffer, and
// - Reduction::mean: all-reduce mean of the bucket's elements (the last bucket's only, not its
//   whole buffer); the averaged gradients are copied back into each parameter's .grad
//   (DataParallelOptimizer's stage 0);
// - Reduction::scatter_sum: reduce-scatter sum into bucket b's chunk of `scatter_out`, elements
//   [b·span/R, (b+1)·span/R) (stage 1, ZeRO-1: rank r receives its part of every bucket).
//
// Order. Every rank must start the same collectives in the same order, whatever order its
// gradients are reported in: buckets start strictly from the last to the first (the backward pass
// finishes the parameters of the last layers first), bucket b once every parameter overlapping
// it is reported ready and bucket b + 1 has started. finish() starts whatever is left, so
// parameters never reported (or a step with no overlap at all: begin() then finish()) are simply
// reduced at the end.
//
// Memory: kBuffers bucket buffers. Starting a bucket in a buffer still in flight first waits for
// that buffer's collective (on a GPU the compute stream waits, the host does not), which also
// bounds how far the collectives can fall behind the backward pass.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"
#include "runtime/communicator.h"

namespace rlaif {

class GradientBuckets {
 public:
  enum class Reduction { mean, scatter_sum };
  // Two buffers: one filling while the other's collective runs.
  static constexpr int kBuffers = 2;

  // `params`: every parameter of the step, one dtype and one device (checked by the caller);
  // they must outlive this object. `span` ≥ 1, a multiple of comm.size() for scatter_sum, where
  // `scatter_out` holds buckets()·span/R elements of the parameters' dtype.
  GradientBuckets(const std::vector<std::pair<std::string, Variable>>& params, Communicator& comm,
                  int64_t span, Reduction reduction, Tensor scatter_out = Tensor());
  // Waits (as begin() does) for collectives still in flight, e.g. after an exception in the
  // backward pass: on a GPU the buffers return to the caching allocator, which hands them to
  // later kernels of the compute stream; without the wait NCCL's stream could still write them.
  ~GradientBuckets();
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  int64_t buckets() const { return buckets_; }
  int64_t span() const { return span_; }
  // Where parameter i begins in the flat vector.
  int64_t offset(size_t i) const { return offset_[i]; }
  // A buffer of span() elements, free between finish() and the next begin().
  const Tensor& scratch() const { return buffers_[0].data; }

  // A step's reduction begins: no gradient is reported ready yet.
  void begin();
  // Collective. Parameter i's gradient is final for this step; starts the buckets that are now
  // complete, in order. Throws Error naming the parameter when it was already reported.
  void ready(size_t i);
  // Collective. Starts the buckets not started yet and waits for all (kernels queued afterwards
  // see the results): for mean, every gradient is averaged in place.
  void finish();

 private:
  struct Buffer {
    Tensor data;
    int64_t bucket = -1;  // the bucket in flight in it, or -1
    Communicator::Ticket ticket = 0;
  };
  const std::vector<std::pair<std::string, Variable>>& params_;
  Communicator& comm_;
  int64_t span_;
  Reduction reduction_;
  Tensor scatter_out_;
  int64_t buckets_ = 0;
  std::vector<int64_t> offset_;               // parameter i occupies [offset_[i], + numel)
  std::vector<std::vector<size_t>> members_;  // bucket b's parameters
  std::vector<int> unready_;                  // bucket b's parameters not yet reported
  std::vector<bool> reported_;
  int64_t next_ = -1;  // the next bucket to start (they start from the last); -1: all started
  int64_t started_ = 0;
  std::vector<Buffer> buffers_;

  void start(int64_t bucket);
  // Waits for the buffer's collective and, for mean, copies the averages into the gradients.
  void retire(Buffer& buffer);
};

}  // namespace rlaif
