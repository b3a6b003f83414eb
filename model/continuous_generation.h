// Bulk generation with continuous batching: many prompts, at most `rows` decoded at once, and
// as soon as a sequence ends (EOS or its token limit) the next waiting prompt that fits takes its
// row (model/decoding_batch.h), so short answers do not leave rows idle until the longest answer
// of their batch is done. When nothing waiting fits and half the rows or more have ended, the
// batch drops them, and it grows back (up to `rows`) when prompts fit again.
//
// Each prompt gets exactly the tokens generate() gives it alone: the same sampling stream, the
// same prefill, and the same number of new tokens, min(max_new_tokens, context - prompt length).
// A prompt waits for a later batch rather than take a row whose room would cut it shorter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "model/generate.h"

namespace rlaif {

// Called once per prompt as its generation ends, in the order they end (not the prompts' order).
using GenerationDone = std::function<void(size_t index, Generation generation)>;

// Generates every prompt (token ids, non-empty, shorter than the context). stream_ids (one per
// prompt, default 0, 1, 2, ...) select each sequence's sampling stream. `stop` (optional) is
// asked after every step: true returns at once, leaving the unfinished prompts unreported.
struct ContinuousGenerationStats {
  int64_t batches = 0;  // batches started
  int64_t joined = 0;   // prompts that took a row of a running batch
  int64_t shrunk = 0;   // times a batch dropped its ended rows
  int64_t steps = 0;    // tokens sampled per row, over every batch
};

ContinuousGenerationStats generate_continuously(const Transformer& model,
                                                const std::vector<std::vector<int32_t>>& prompts,
                                                const GenerationOptions& options,
                                                const std::vector<uint64_t>& stream_ids,
                                                int64_t rows, const GenerationDone& done,
                                                const std::function<bool()>& stop = nullptr);

}  // namespace rlaif
