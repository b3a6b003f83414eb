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

// Asked after every step about each row that received a token (its index and its tokens so
// far): false ends that row there, as if it had reached its limit. A row whose token was an EOS
// id is asked too (so_far.stopped_at_eos) and ends whatever the answer, so the caller sees every
// row's every token as it comes. A server uses it to stream each request's tokens, and to end
// the rows of requests that were abandoned or reached their own max_tokens: generation ends as
// soon as no row is left, instead of running the batch's longest request to its end.
using KeepRow = std::function<bool(int64_t row, const Generation& so_far)>;

// Generates a continuation for each prompt (token ids, non-empty). stream_ids (one per prompt,
// default 0, 1, 2, ...) select each sequence's sampling stream. `on_token` (optional) is called
// after every decoding step with the number of steps done, for progress reporting; `keep_row`
// (optional) ends rows early.
std::vector<Generation> generate(const Transformer& model,
                                 const std::vector<std::vector<int32_t>>& prompts,
                                 const GenerationOptions& options,
                                 const std::vector<uint64_t>& stream_ids = {},
                                 const std::function<void(int64_t)>& on_step = nullptr,
                                 const KeepRow& keep_row = nullptr);

}  // namespace rlaif
