// Language-model pretraining: next-token cross-entropy on windows of a token stream,
//   L = -(1/(B·T)) Σ_{b,t} log p_θ(x_{b,t+1} | x_{b,≤t})
// (Radford et al., 2019; the objective of every GPT).
//
// Windows (micro-batch k = step·A + micro, A = grad_accum):
//   sequential: as llm.c's loader, batch k reads the contiguous chunk of B·T+1 tokens starting at
//     (k mod K)·B·T, K = ⌊(N−1)/(B·T)⌋ chunks; row b is chunk[b·T, (b+1)·T] (targets shifted by
//     one).
//   shuffled: row b of batch k starts at a position drawn uniformly from [0, N−T−1] by Philox
//     (seed, stream k·B + b): any step's data is known without replaying the steps before it.
// Data parallelism over R ranks (rank r): batch k is the same global batch on every rank and rank
// r trains on its rows [r·B/R, (r+1)·B/R), B divisible by R; the loss is the mean over the shard's
// tokens, so the mean over ranks is the global batch's loss. Evaluation runs on the full batch.
// Evaluation: mean loss over up to `eval_batches` consecutive [B, T] windows of the held-out
// tokens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "algorithms/trainer.h"

namespace rlaif {

struct PretrainDataOptions {
  int64_t batch = 8;               // B
  int64_t seq = 256;               // T
  std::string order = "shuffled";  // sequential | shuffled
  uint64_t seed = 0;
  int64_t eval_batches = 20;
  int64_t grad_accum = 1;
  int rank = 0;   // data-parallel rank (see above)
  int ranks = 1;  // R
};

class PretrainTask : public TrainingTask {
 public:
  PretrainTask(const Transformer& model, std::vector<int32_t> train, std::vector<int32_t> val,
               PretrainDataOptions options);

  MicroBatchResult micro_batch(int64_t step, int64_t micro, double scale) override;
  std::vector<std::pair<std::string, double>> evaluate() override;

  // Inputs and targets of micro-batch k ([B, T] each, row-major), as described above.
  void batch_tokens(int64_t k, std::vector<int32_t>& inputs, std::vector<int32_t>& targets) const;

 private:
  // Rows [first, first + count) of batch k.
  void rows(int64_t k, int64_t first, int64_t count, std::vector<int32_t>& inputs,
            std::vector<int32_t>& targets) const;
  // Mean loss of [rows, T] windows; `positions` is [rows, T].
  double batch_loss(const std::vector<int32_t>& inputs, const std::vector<int32_t>& targets,
                    const Tensor& positions, double scale, bool backward) const;

  const Transformer& model_;
  std::vector<int32_t> train_, val_;
  PretrainDataOptions options_;
  int64_t shard_rows_;      // B/R
  Tensor positions_;        // [B, T]: 0..T-1 in every row
  Tensor shard_positions_;  // [B/R, T]
};

}  // namespace rlaif
