// The client of a reward server: any HTTP endpoint that scores completions with the user's own
// code (a verifier, a unit-test runner, a model served elsewhere), in any language.
//
// Protocol. Each request is POST URL with Content-Type: application/json and the body
//   {"items": [{"prompt": "...", "completion": "...", "columns": {...}}, ...]}
// where "prompt" is the raw prompt (before any chat template), "completion" the decoded response
// (no EOS), and "columns" the prompt's record in the prompts file without its "prompt" field
// (e.g. {"answer": "a b d", "family": "sort"}). The server answers 200 with
//   {"scores": [s_1, ..., s_n]}
// one finite JSON number per item, in the items' order; other fields are ignored. Anything else
// in a 2xx answer (not JSON, no "scores", a count that differs from the items', a score that is
// not a finite number) is an Error naming the URL and the item, at once: a server that answers
// that way will answer it again. 429, 408 and 5xx (but 501) are retried with backoff, as the LLM
// client does (io/http_batch.h); other 4xx fail at once with the server's message.
//
// A scoring call's items go out in requests of at most `items_per_request` items, `concurrency`
// of them at once. Every answer is appended to the cache file keyed by the SHA-256 of the request
// body, so a resumed run, which asks for the same items in the same requests, sends none of those
// already answered. The key is the body alone: the same items sent to another URL (a local
// server restarted on another port) are answered from the cache.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rlaif {

class HttpBatchClient;

struct RewardServerItem {
  std::string prompt;
  std::string completion;
  std::string columns_json = "{}";  // a JSON object (compact)
};

struct RewardServerOptions {
  std::string url;      // http:// or https://
  int concurrency = 4;  // requests in flight at once
  int items_per_request = 64;
  double timeout_s = 120;  // per HTTP request
  int max_attempts = 8;    // per request, the first try included
  double backoff_s = 1.0;  // first retry delay; doubles each retry, with ±50% jitter
  double max_backoff_s = 60;
  std::string cache_path;  // "" = no cache
};

class RewardServerClient {
 public:
  // Error for a URL that is not http(s), or options out of range.
  explicit RewardServerClient(RewardServerOptions options);
  ~RewardServerClient();
  RewardServerClient(const RewardServerClient&) = delete;
  RewardServerClient& operator=(const RewardServerClient&) = delete;

  // One score per item, in order. `call` names the scoring call in errors (e.g. "scoring call
  // 3"). Error naming the URL and the item for a failed request or a bad answer, and
  // "interrupted" when the stop check fired.
  std::vector<double> score(const std::vector<RewardServerItem>& items, const std::string& call);

  void set_stop_check(std::function<bool()> should_stop);
  // "12 requests (2 retried), 3 cached" (with ", 1 failed" when requests failed).
  std::string usage_summary() const;
  int64_t requests_sent() const;
  int64_t cached() const { return cached_; }
  const RewardServerOptions& options() const { return options_; }

 private:
  RewardServerOptions options_;
  std::unique_ptr<HttpBatchClient> http_;
  int64_t cached_ = 0;
};

// The request body for items (what the cache key hashes).
std::string reward_server_body(const std::vector<RewardServerItem>& items);
// Reads an answer to `expected` items: "" and the scores, or what is wrong, naming the item.
std::string parse_reward_server_answer(std::string_view body, size_t expected,
                                       std::vector<double>& scores);

}  // namespace rlaif
