// Batched autoregressive generation with a KV cache.
//
// Prompts of different lengths are left-padded into one batch; padding sits in its own attention
// segment and real tokens' positions start at 0, so every sequence computes what it would alone.
// Sampling randomness comes from each sequence's own stream (model/sampling.h), so batching
// never changes the sampled tokens either.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/sampling.h"
#include "model/transformer.h"

namespace rlaif {

struct GenerationOptions {
  int64_t max_new_tokens = 256;
  SamplingOptions sampling;
  // A sequence stops when it emits any of these ids (none: it never stops early); the id is kept.
  std::vector<int32_t> eos_ids;
};

struct Generation {
  std::vector<int32_t> tokens;  // the new tokens (ending with an eos id when it stopped there)
  bool stopped_at_eos = false;
};

// Generates a continuation for each prompt (token ids, non-empty). stream_ids (one per prompt,
// default 0, 1, 2, ...) select each sequence's sampling stream. `on_step` (optional) is called
// after every decoding step with the number of steps done, for progress reporting. A batch runs
// until every row has stopped or the longest prompt's room is used; for rows that end at other
// times and new prompts taking their place, see model/decoding_batch.h and
// model/continuous_generation.h.
std::vector<Generation> generate(const Transformer& model,
                                 const std::vector<std::vector<int32_t>>& prompts,
                                 const GenerationOptions& options,
                                 const std::vector<uint64_t>& stream_ids = {},
                                 const std::function<void(int64_t)>& on_step = nullptr);

}  // namespace rlaif
