// What a run has spent on a paid API, and the limits it may not pass: one meter per API client,
// consulted by the transport (io/http_batch.h) before every HTTP request it starts.
//
// - A request counts when it is sent: retries count (each is a request the provider may bill),
//   answers from the request cache do not (they cost nothing).
// - Tokens are prompt + completion as the response's `usage` reports them; a response without
//   usage is counted by estimate (estimate_tokens: 4 bytes a token, of the request body and of the
//   answer's text) and the count of such responses is kept, so the spend line can say so.
// - A request may start only while both limits hold: fewer than max_requests sent and fewer than
//   max_tokens counted. Requests already in flight finish (they are paid for); their tokens may
//   carry the total past max_tokens, by at most what the requests in flight return.
// - try_start_request() is atomic with respect to other threads: however many threads share a
//   meter, no more than max_requests starts are granted.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "runtime/error.h"

namespace rlaif {

struct SpendLimits {
  int64_t max_requests = 0;  // HTTP requests sent at most; 0 = no limit
  int64_t max_tokens = 0;    // prompt + completion tokens at most; 0 = no limit
  bool any() const { return max_requests > 0 || max_tokens > 0; }
};

struct Spend {
  int64_t requests = 0;  // HTTP requests sent, retries included
  int64_t prompt_tokens = 0, completion_tokens = 0;
  int64_t estimated_responses = 0;  // responses without usage, whose tokens are estimates
  int64_t total_tokens() const { return prompt_tokens + completion_tokens; }
};

// The error of an item that a limit kept from being sent (or retried): no failure of the item,
// which a re-run with a higher limit asks for.
inline constexpr const char* kNotSentSpendLimit = "not sent: the spending limit was reached";

// Thrown where a computation cannot go on without the answers a limit kept from being sent (a
// reward for every rollout, a verdict for every pair): the training loops catch it, save a
// checkpoint and stop cleanly.
class SpendLimitReached : public Error {
 public:
  using Error::Error;
};

// Tokens in `text` by the rule the meter uses where a response has no usage: 4 bytes a token,
// rounded up (an approximation for English text under BPE tokenizers).
int64_t estimate_tokens(std::string_view text);

// "12 requests, 3456 prompt + 789 completion tokens (4245 in all)", and when responses lacked
// usage ", 2 responses without usage counted at 4 bytes a token".
std::string describe_spend(const Spend& spend);

class SpendMeter {
 public:
  // Error naming the flag for a negative limit.
  explicit SpendMeter(SpendLimits limits = {});

  // Counts one request about to be sent and returns true, or returns false and counts nothing
  // when a limit is reached; a refusal is remembered (stopped_by_limit()).
  bool try_start_request();
  // Records the tokens of one response (estimated = it reported no usage).
  void record_tokens(int64_t prompt_tokens, int64_t completion_tokens, bool estimated);

  Spend spent() const;
  const SpendLimits& limits() const { return limits_; }
  // Whether a limit is reached now (no request may start).
  bool limit_reached() const;
  // Whether a limit ever refused a request: the run did not get everything it asked for.
  bool stopped_by_limit() const;
  // Which limit holds: "--max-requests 10 (10 sent)" or "--max-total-tokens 5000 (5123
  // counted)"; "" when none is reached.
  std::string reached_limit() const;

 private:
  bool reached_locked() const;

  const SpendLimits limits_;
  mutable std::mutex mutex_;
  Spend spent_;
  bool refused_ = false;
};

}  // namespace rlaif
