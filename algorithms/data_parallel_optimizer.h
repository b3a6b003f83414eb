// DataParallelOptimizer: the optimizer step of a training run over one or many data-parallel
// ranks: gradient averaging, global-norm clipping and AdamW, with the optimizer state either
// replicated on every rank or sharded across them (ZeRO stage 1).
//
// Every rank holds the whole model and computes gradients on its own shard of the batch; the
// update must then be the one a single process would make from the gradient of the whole batch,
// identical on every rank, so the weights never drift apart.
//
// Stage 0 (replicated): the gradients are averaged with all-reduce, packed into flat buckets of
// about 32 MiB (one collective per bucket instead of one per parameter: on a GPU a small
// collective costs its latency, not its bytes), then clipped and applied by an AdamW that every
// rank holds whole. Per element this is the same arithmetic as one rank applying the averaged
// gradient, so with one rank it is exactly AdamW.
//
// Stage 1 (ZeRO-1; Rajbhandari et al., 2020, "ZeRO: Memory Optimizations Toward Training
// Trillion Parameter Models", §5.1 "P_os"): the parameters, laid end to end in one flat vector
// of P elements, are cut into buckets of S·R elements (R ranks, S·R about 32 MiB), and rank r
// owns elements [r·S, (r+1)·S) of every bucket: about P/R elements, for which alone it holds
// AdamW's moments m, v and (for parameters that are not f32) the f32 master weights. A step is
//   1. per bucket, reduce-scatter the gradients: rank r receives the sum over ranks of its part
//      of the bucket; then divide by R (the mean);
//   2. global norm: each rank's Σg² per parameter over its parts, summed over ranks (all-reduce);
//      the clipping coefficient is stage 0's;
//   3. AdamW on the owned parts (one Backend::adamw_steps over the pieces of every parameter,
//      each with that parameter's weight decay, the gradients scaled by the coefficient as they
//      are read), written into the parameters;
//   4. per bucket, all-gather the updated parts into every rank's parameters.
// Per rank this holds m, v (8 bytes per parameter, 12 with a bf16 model's master copy) and the
// reduced gradient for P/R elements only, plus one bucket buffer: optimizer memory falls by the
// rank count. Updates are the same elementwise arithmetic as stage 0, so on one rank, where each
// parameter lies within a bucket, the two stages give bitwise-identical weights; on R ranks they
// differ only where the clipping coefficient's norm is summed in another order.
//
// Overlap with the backward pass (both stages, when the parameters share a dtype and a device):
// reduce_gradients() could start only after backward() has returned, leaving the GPU idle while
// the gradients travel. Instead, the step's last backward pass runs under overlap_backward(), and
// each bucket's collective starts as soon as the pass has finished its gradients (autograd's
// gradient-ready hook, autograd/gradient_ready.h; the buckets, their order and buffers are
// GradientBuckets', algorithms/gradient_buckets.h), on NCCL's own stream alongside the rest of
// the pass. reduce_gradients() then only starts what is left and waits. The arithmetic is the
// same either way: with MPI (whose collectives complete before they return, so nothing is
// gained on CPU but the code path is the one GPUs run) the results are bitwise those without it.
// As in PyTorch DDP, every rank's pass must reach the same parameters (the same model, whatever
// the data): with MPI's blocking collectives, a rank whose graph left a parameter out would
// start its buckets later than the others and could wait for them in another collective.
//
// Checkpoints hold the optimizer state in AdamW's own format (state(): every parameter's whole
// m, v and master, gathered from the shards), so a checkpoint written with --zero 1 on R ranks
// resumes on R ranks bit for bit, and also on another rank count or without ZeRO.
//
// Collectives: every method marked "collective" must be called by every rank in the same order.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "algorithms/adamw.h"
#include "autograd/gradient_ready.h"
#include "autograd/variable.h"
#include "runtime/communicator.h"

namespace rlaif {

class GradientBuckets;

class DataParallelOptimizer {
 public:
  // `params`: the trainable parameters (as for AdamW: unique names key the state). `comm`: the
  // ranks this run is one of (must outlive the optimizer). zero_stage: 0 or 1 (else Error). With
  // stage 1, every parameter must have one dtype and one device (Error naming the first that
  // differs): they share one flat vector.
  // bucket_bytes: the size of a bucket (tests make it tiny to cut parameters into many pieces).
  DataParallelOptimizer(std::vector<std::pair<std::string, Variable>> params, AdamWOptions options,
                        Communicator& comm, int zero_stage = 0,
                        size_t bucket_bytes = kDefaultBucketBytes);

  // A bucket's size: large enough that a collective's latency is small beside its bytes, small
  // enough that a bucket buffer is a minor cost (PyTorch DDP's default bucket is 25 MiB).
  static constexpr size_t kDefaultBucketBytes = size_t{32} << 20;
  ~DataParallelOptimizer();
  DataParallelOptimizer(const DataParallelOptimizer&) = delete;
  DataParallelOptimizer& operator=(const DataParallelOptimizer&) = delete;

  // Collective. Averages the gradients over the ranks and measures their global norm, for
  // clipping to max_norm (≤ 0: no clipping; the rule is clip_grad_norm's, algorithms/grad_clip.h):
  // the next step() applies the factor as it reads the gradients, which are left unscaled.
  // Returns the global norm before clipping, the same on every rank; a non-finite norm is
  // returned and nothing is clipped (the caller decides to stop). Parameters without a gradient
  // are left out, and must be the same ones on every rank.
  double reduce_gradients(double max_norm);
  // Collective. Reduces the gradients during the backward pass that runs while the returned
  // scope lives: open it just before the step's last micro-batch (its forward and backward) and
  // close it after; reduce_gradients() then finishes the reduction. Earlier micro-batches'
  // gradients are accumulated before the last pass, so they are included. Only one backward pass
  // may run in the scope (Error otherwise: a gradient would change after it was sent). With one
  // plain process, or parameters of mixed dtypes or devices, the scope does nothing and
  // reduce_gradients() does all the work.
  [[nodiscard]] GradientReadyScope overlap_backward();
  // Collective under stage 1. One AdamW update with learning rate lr from the gradients
  // reduce_gradients() left, scaled by its clipping factor (AdamW::step's rules: step_count()
  // advances first; parameters without a gradient are skipped).
  void step(double lr);
  // Drops every parameter's gradient.
  void zero_grad();

  int64_t step_count() const;
  int zero_stage() const { return zero_stage_; }
  const std::vector<std::pair<std::string, Variable>>& params() const { return params_; }
  // Bytes of optimizer state (moments and master weights) this rank holds.
  int64_t state_bytes() const;

  // Collective under stage 1. Host copies of the whole optimizer state in AdamW::state()'s format
  // (names, shapes, order), the same on every rank. A rank that will not write the checkpoint
  // passes wanted = false: it still takes part in gathering the shards but gets an empty list, so
  // it makes no host copy of state it would throw away.
  std::vector<std::pair<std::string, Tensor>> state(bool wanted = true) const;
  // Restores what state() (or AdamW::state()) returned, with AdamW::load_state's checks; each
  // rank keeps its own chunk. Not collective.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& state, int64_t step_count);

 private:
  struct Sharded;  // stage 1's flat vectors and chunk (data_parallel_optimizer.cpp)

  // Whether gradients travel between ranks (several ranks, or one rank through NCCL).
  bool distributed() const;
  // The buckets' reduction, overlapped or not.
  void reduce_buckets();

  std::vector<std::pair<std::string, Variable>> params_;
  AdamWOptions options_;
  Communicator& comm_;
  int zero_stage_;
  size_t bucket_bytes_;
  std::unique_ptr<AdamW> replicated_;         // stage 0
  std::unique_ptr<Sharded> sharded_;          // stage 1
  std::unique_ptr<GradientBuckets> buckets_;  // stage 1; stage 0 when distributed, one dtype
  Tensor bucket_scratch_;    // stage 0 with mixed dtypes: the packing buffer, kept between steps
  float grad_scale_ = 1.0f;  // the clipping factor reduce_gradients() found, for step()
  std::unordered_map<const void*, size_t> index_;  // parameter identity → index in params_
  bool overlapping_ = false;                       // overlap_backward() began this step's reduction
};

}  // namespace rlaif
