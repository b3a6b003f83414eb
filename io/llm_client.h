// The client of an OpenAI-compatible HTTP API (OpenAI, vLLM, llama.cpp's server, `rlaif serve`):
// the LLM teacher writes demonstrations through it and the LLM critic labels preferences and
// judges win rates through it.
//
// What it guarantees, for long labelling runs that must survive anything:
// - Requests run concurrently (libcurl multi, `concurrency` in flight) under a requests-per-minute
//   limit, each with a timeout.
// - Retries with exponential backoff and jitter on 429, 5xx, timeouts and dropped connections,
//   honouring Retry-After; any other 4xx fails that item at once with the server's message
//   (io/retry_policy.h has the exact rules: 408 is retried, 501 is not).
// - Responses are validated: a missing field, a wrong type or empty `choices` is an error naming
//   the item.
// - Every completed response is appended to the cache file (OUT/requests.jsonl), keyed by a hash
//   of the request body, and flushed at once: a re-run after a crash, Ctrl-C or an exhausted
//   quota sends nothing twice and loses nothing.
// - The API key (from OPENAI_API_KEY) goes only into the Authorization header: never into the
//   cache, logs or errors; it is sent only over TLS (https) unless the base URL is loopback.
//   TLS certificates are verified.
// - Token usage is summed over every response (cached ones included, counted apart).
// - What the run spends (requests sent, tokens of the answers sent for) is metered, and stops
//   the run at the limits the options set (io/spend_meter.h): the requests in flight finish and
//   are cached, nothing more is sent, and the items left get error kNotSentSpendLimit.
// The transport (concurrency, retries, the cache) is io/http_batch.h; this client writes the
// OpenAI request bodies and reads the completions.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/chat_message.h"
#include "io/spend_meter.h"

namespace rlaif {

// One request. With `messages` non-empty it goes to POST {api_base}/chat/completions; otherwise
// `prompt` goes to POST {api_base}/completions.
struct CompletionRequest {
  std::vector<ChatMessage> messages;
  std::string prompt;
  double temperature = 0.0;
  int64_t max_tokens = 512;
  std::optional<uint64_t> seed;  // sent when set (servers that honour it are reproducible)
  std::string item;              // what errors call this request, e.g. "prompts.jsonl line 17"
};

struct CompletionResult {
  bool ok = false;
  std::string text;           // choices[0].message.content, or choices[0].text
  std::string finish_reason;  // "stop", "length", ... as the server said
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  bool from_cache = false;  // answered from the cache file, not sent
  int attempts = 0;         // HTTP requests made for it (0 when cached)
  double retry_wait_s = 0;  // the delays its retries were scheduled after (Retry-After, backoff)
  std::string error;        // when !ok: why, naming the item (the server's message for a 4xx)
};

struct ClientOptions {
  std::string api_base;    // e.g. "https://api.openai.com/v1" or "http://127.0.0.1:8080/v1"
  std::string model;       // the "model" field of every request
  std::string api_key;     // empty: no Authorization header (local servers)
  int concurrency = 8;     // requests in flight at once
  double max_rpm = 0;      // requests started per minute at most; 0 = no limit
  double timeout_s = 120;  // per HTTP request
  int max_attempts = 8;    // per item, the first try included
  double backoff_s = 1.0;  // first retry delay; doubles each retry, with ±50% jitter
  double max_backoff_s = 60;
  std::string cache_path;    // the append-only cache (JSONL); "" = no cache
  SpendLimits spend_limits;  // requests and tokens this client may spend; none by default
};

struct ApiUsage {
  int64_t requests_sent = 0;                         // HTTP requests, retries included
  int64_t cached = 0;                                // items answered from the cache
  int64_t failed = 0;                                // items that ended with an error
  int64_t prompt_tokens = 0, completion_tokens = 0;  // over sent and cached responses
};

class LlmClient {
 public:
  // Validates the options (Error naming the flag: empty api_base or model, a key over plain
  // http to a non-loopback host, concurrency < 1) and loads the cache file when it exists
  // (Error naming the file and line of a malformed entry).
  explicit LlmClient(ClientOptions options);
  ~LlmClient();
  LlmClient(const LlmClient&) = delete;
  LlmClient& operator=(const LlmClient&) = delete;

  // Runs every request and returns the results in request order. Requests whose body is in the
  // cache are answered from it; requests of one call with the same body are sent once and share
  // the answer (the others count as cached). `on_result(i, result)` is called on the calling
  // thread as each item finishes (for progress bars and for writing outputs incrementally).
  // Items that fail have ok = false; the call itself throws only for misuse (a non-finite
  // temperature, max_tokens < 1) or when the cache file cannot be written. Stops early when the
  // stop check (set_stop_check) returns true: the requests in flight finish and are cached
  // (they are paid for), nothing more is started, and the items left get ok = false, error
  // "interrupted", without an on_result call.
  std::vector<CompletionResult> complete_all(
      const std::vector<CompletionRequest>& requests,
      const std::function<void(size_t, const CompletionResult&)>& on_result = {});
  CompletionResult complete(const CompletionRequest& request);

  // What complete_all() polls (every ~50 ms) to stop early; none by default. io/ cannot see
  // algorithms/stop_signals.h, so the command passes it in:
  //   StopSignals signals;
  //   client.set_stop_check([&] { return signals.pending() != 0; });
  void set_stop_check(std::function<bool()> should_stop);

  const ApiUsage& usage() const;
  // What this client has spent (sent requests and their answers' tokens; the cache's are free).
  Spend spent() const;
  // Whether the spending limit kept a request from being sent: the run is incomplete.
  bool stopped_by_spend_limit() const;
  // The limit that stopped it, e.g. "--max-requests 10 (10 sent)"; "" when none is reached.
  std::string reached_spend_limit() const;
  // "1234 requests (12 retried), 56 cached; 1.2M prompt + 0.3M completion tokens" (with
  // ", 3 failed" after "cached" when items failed).
  std::string usage_summary() const;
  const ClientOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// OPENAI_API_KEY from the environment, or "".
std::string api_key_from_env();
// Whether a base URL's host is loopback (localhost, 127.0.0.0/8, [::1]).
bool is_loopback_url(const std::string& url);
// The JSON body the client sends for a request (model included): what the cache key hashes.
std::string request_body(const CompletionRequest& request, const std::string& model);
// Hex digest of a request body (the cache key).
std::string request_key(const std::string& body);

}  // namespace rlaif
