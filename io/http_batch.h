// Many JSON POST requests to an HTTP server, answered in order, for long runs that must survive
// anything: the transport under the LLM client (io/llm_client.h) and the reward server client
// (io/reward_server.h), each of which says what its requests hold and how its answers read.
//
// - Requests run concurrently (libcurl multi, `concurrency` in flight) under a requests-per-minute
//   limit, each with a timeout.
// - Retries with exponential backoff and jitter on 429, 5xx, timeouts and dropped connections,
//   honouring Retry-After; any other 4xx fails that item at once with the server's message
//   (io/retry_policy.h has the exact rules).
// - A 2xx body goes to the caller's reader, which checks it strictly: a body it refuses fails the
//   item at once (a server that answers 200 with the wrong shape will answer it again).
// - Every answer the reader accepted is appended to the cache file, keyed by the request's key,
//   and flushed at once (io/request_cache.h): a re-run sends nothing twice and loses nothing.
//   Requests of one call with the same key are sent once and share the answer.
// - A spending meter (io/spend_meter.h), when given, is asked before every request starts,
//   retries included, and told the tokens of every answer: at its limit nothing more starts, as
//   after a stop.
// - The API key goes only into the Authorization header and is redacted from every error.
//   Redirects are not followed (curl would resend the header wherever they point); TLS
//   certificates are verified.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/api_response.h"
#include "io/spend_meter.h"

namespace rlaif {

struct HttpPost {
  std::string url;   // where the body is POSTed
  std::string body;  // JSON
  std::string key;   // the cache key (e.g. request_key(body))
  std::string item;  // what errors call this request; "" = "request N"
};

struct HttpPostResult {
  bool ok = false;
  ParsedCompletion answer;  // what the reader made of the body (what the cache holds)
  bool from_cache = false;  // answered from the cache, or by another request of the call
  int attempts = 0;         // HTTP requests made for it (0 when cached)
  double retry_wait_s = 0;  // the delays its retries were scheduled after (Retry-After, backoff)
  // When !ok: why, naming the item; "interrupted" when stopped first, kNotSentSpendLimit when
  // the spending limit kept it from being sent (or retried).
  std::string error;
};

// Reads the 2xx body of request `index`: returns "" and fills `out`, or says what is wrong.
using HttpAnswerReader =
    std::function<std::string(std::string_view body, size_t index, ParsedCompletion& out)>;

struct HttpBatchOptions {
  std::string server;      // named in transport errors, e.g. the API's base URL
  std::string api_key;     // "" = no Authorization header
  bool loopback = false;   // the server is this machine: no proxy from the environment
  int concurrency = 8;     // requests in flight at once (>= 1)
  double max_rpm = 0;      // requests started per minute at most; 0 = no limit
  double timeout_s = 120;  // per HTTP request
  int max_attempts = 8;    // per item, the first try included
  double backoff_s = 1.0;  // first retry delay; doubles each retry, with ±50% jitter
  double max_backoff_s = 60;
  std::string cache_path;       // the append-only cache (JSONL); "" = no cache
  SpendMeter* spend = nullptr;  // asked before each request starts; must outlive the client
};

struct UrlParts {
  std::string scheme;  // lowercase
  std::string host;    // lowercase; IPv6 addresses in brackets
};
// Parsed by libcurl itself, so the host checked is the host curl connects to (no disagreement
// over "http://127.0.0.1@evil.example/" and the like); nullopt when `url` is not a URL.
std::optional<UrlParts> parse_url(const std::string& url);
// Whether `url` is an http:// or https:// URL with a host.
bool is_http_url(const std::string& url);
// localhost, 127.0.0.0/8, [::1] and IPv4-mapped loopback.
bool is_loopback_host(std::string host);

class HttpBatchClient {
 public:
  // Loads the cache file when it exists (Error naming its file and line when malformed). The
  // options are the caller's to check (LlmClient's constructor names the flags).
  explicit HttpBatchClient(HttpBatchOptions options);
  ~HttpBatchClient();
  HttpBatchClient(const HttpBatchClient&) = delete;
  HttpBatchClient& operator=(const HttpBatchClient&) = delete;

  // Runs every request and returns the results in request order; `on_result(i, result)` is
  // called on the calling thread as each item finishes. Requests whose key is cached are
  // answered from the cache. Items that fail have ok = false; the call throws only when the
  // cache file cannot be written or libcurl fails. Stops early when the stop check returns true:
  // the requests in flight finish and are cached, nothing more starts, and the items left get
  // ok = false, error "interrupted", without an on_result call. The spending meter's limit stops
  // it the same way, the items left getting error kNotSentSpendLimit. One call runs at a time.
  std::vector<HttpPostResult> post_all(
      const std::vector<HttpPost>& requests, const HttpAnswerReader& read,
      const std::function<void(size_t, const HttpPostResult&)>& on_result = {});

  // Polled every ~50 ms while waiting on the network; none by default.
  void set_stop_check(std::function<bool()> should_stop);

  const HttpBatchOptions& options() const;
  int64_t requests_sent() const;  // HTTP requests, retries included
  int64_t retries() const;        // of them, the retries
  int64_t failed() const;         // items that ended with an error

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rlaif
