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
// of P elements padded to R·c (c = ⌈P/R⌉), are split into R equal chunks, and rank r owns chunk
// r of the AdamW moments m, v and (for parameters that are not f32) of the f32 master weights.
// A step is
//   1. reduce-scatter the flat gradient: rank r receives the sum of every rank's chunk r, and
//      divides it by R (the mean);
//   2. global norm: each rank's Σg² over its chunk, summed over ranks (all-reduce); clip the
//      chunk with the same coefficient as stage 0;
//   3. AdamW on the chunk (Backend::adamw_step on the pieces of each parameter that fall in it,
//      each with that parameter's weight decay);
//   4. all-gather the updated chunks into the flat parameter vector, and copy it into the
//      parameters.
// Optimizer memory per rank falls from 8 bytes per parameter (12 with a bf16 model's master copy)
// to that divided by R; the flat gradient and parameter vectors cost one more copy of each
// (stage 0 packs gradients into buckets too). Updates are the same elementwise arithmetic as
// stage 0, so on one rank the two stages give bitwise-identical weights, and on R ranks they
// differ only where the clipping coefficient's norm is summed in another order.
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
#include <utility>
#include <vector>

#include "algorithms/adamw.h"
#include "autograd/variable.h"
#include "runtime/communicator.h"

namespace rlaif {

class DataParallelOptimizer {
 public:
  // `params`: the trainable parameters (as for AdamW: unique names key the state). `comm`: the
  // ranks this run is one of (must outlive the optimizer). zero_stage: 0 or 1 (else Error). With
  // stage 1, every parameter must have one dtype and one device (Error naming the first that
  // differs): they share one flat vector.
  DataParallelOptimizer(std::vector<std::pair<std::string, Variable>> params, AdamWOptions options,
                        Communicator& comm, int zero_stage = 0);
  ~DataParallelOptimizer();
  DataParallelOptimizer(const DataParallelOptimizer&) = delete;
  DataParallelOptimizer& operator=(const DataParallelOptimizer&) = delete;

  // Collective. Averages the gradients over the ranks and clips them to global norm max_norm
  // (≤ 0: no clipping; the rule is clip_grad_norm's, algorithms/grad_clip.h). Returns the global
  // norm before clipping, the same on every rank; a non-finite norm is returned and nothing is
  // clipped (the caller decides to stop). Parameters without a gradient are left out, and must
  // be the same ones on every rank.
  double reduce_gradients(double max_norm);
  // Collective under stage 1. One AdamW update with learning rate lr from the gradients
  // reduce_gradients() left (AdamW::step's rules: step_count() advances first; parameters
  // without a gradient are skipped).
  void step(double lr);
  // Drops every parameter's gradient.
  void zero_grad();

  int64_t step_count() const;
  int zero_stage() const { return zero_stage_; }
  const std::vector<std::pair<std::string, Variable>>& params() const { return params_; }
  // Bytes of optimizer state (moments and master weights) this rank holds.
  int64_t state_bytes() const;

  // Collective under stage 1. Host copies of the whole optimizer state in AdamW::state()'s format
  // (names, shapes, order), the same on every rank.
  std::vector<std::pair<std::string, Tensor>> state() const;
  // Restores what state() (or AdamW::state()) returned, with AdamW::load_state's checks; each
  // rank keeps its own chunk. Not collective.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& state, int64_t step_count);

 private:
  struct Sharded;  // stage 1's flat vectors and chunk (data_parallel_optimizer.cpp)

  std::vector<std::pair<std::string, Variable>> params_;
  AdamWOptions options_;
  Communicator& comm_;
  int zero_stage_;
  std::unique_ptr<AdamW> replicated_;  // stage 0
  std::unique_ptr<Sharded> sharded_;   // stage 1
  Tensor bucket_scratch_;              // stage 0's packing buffer, kept between steps
};

}  // namespace rlaif
