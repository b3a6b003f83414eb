// What a batch of API requests would spend, before any is sent (the commands' --dry-run): the
// requests the client would send, the prompt tokens they carry and the most completion tokens
// they may return. Requests the cache already answers, and repeats of a request in the batch,
// are free and counted apart, as LlmClient::complete_all() would answer them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/llm_client.h"

namespace rlaif {

struct SpendEstimate {
  int64_t requests = 0;               // to be sent (retries not foreseen)
  int64_t cached = 0;                 // answered by the cache or by a repeat in the batch: free
  int64_t prompt_tokens = 0;          // of the requests to be sent, estimate_tokens() of the text
  int64_t max_completion_tokens = 0;  // the sum of their max_tokens: an upper bound

  void add(const SpendEstimate& other);
};

// The estimate for `requests` sent to `model` through a client whose cache is `cache_path` ("" =
// none; a missing file is an empty cache). Prompt tokens are estimated from the text of the
// messages (or the prompt) at 4 bytes a token.
SpendEstimate estimate_spend(const std::vector<CompletionRequest>& requests,
                             const std::string& model, const std::string& cache_path);

// "dry run: 120 requests (8 more answered by the cache), ~45.2k prompt tokens (4 bytes a token),
// at most 1920 completion tokens (max_tokens); nothing sent".
std::string describe_estimate(const SpendEstimate& estimate);

}  // namespace rlaif
