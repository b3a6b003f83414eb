// Choosing the next token from a row of logits: greedy, temperature, top-k, top-p (nucleus,
// Holtzman et al., 2020), with the randomness taken from a Philox stream so that a sequence's
// tokens depend only on (seed, its stream id, the step), never on how sequences were batched.
#pragma once

#include <cstdint>

namespace rlaif {

struct SamplingOptions {
  float temperature = 1.0f;  // 0 = greedy (argmax, lowest id on ties)
  int64_t top_k = 0;         // keep the k most likely tokens; 0 = all
  float top_p = 1.0f;        // keep the smallest most-likely set whose probability reaches p
  uint64_t seed = 0;
};

// The uniform draw in [0, 1) that sequence `stream` uses at decoding step `step`.
float sampling_uniform(uint64_t seed, uint64_t stream, uint64_t step);

// Picks a token id from `logits` (vocab entries, host memory) with the given uniform draw `u`.
// Order of candidates: descending probability, ascending id on ties; the token is the first whose
// cumulative (renormalised) probability exceeds u. Errors on non-finite logits naming the id.
// The rules are Backend::sample_tokens' (kernels/backend.h), which this runs on the CPU backend;
// generation calls that primitive on the model's device for all rows at once.
int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& options, float u);

}  // namespace rlaif
