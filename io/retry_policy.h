// When the LLM client retries a request and how long it waits first. Kept apart from the
// transfer loop so the rules can be read (and tested) on their own.
//
// Retried: HTTP 429 and 408, 5xx except 501 (Not Implemented is permanent by definition), and
// transport failures that a later try can survive (timeouts, refused or dropped connections,
// truncated replies, TLS handshakes cut short). Not retried: other 4xx (the request itself is
// wrong), failed certificate checks, malformed URLs, and anything else curl reports.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <random>
#include <string_view>

namespace rlaif {

bool is_retryable_status(long http_status);
// `curl_code` is a CURLcode (an int here so this header does not need curl.h).
bool is_retryable_transport_error(int curl_code);

struct BackoffOptions {
  double backoff_s = 1.0;  // the first retry's delay
  double max_backoff_s = 60;
};

// The delay before retry number `retry` (1 for the first retry): backoff_s * 2^(retry-1) times a
// uniform jitter factor in [0.5, 1.5), so that clients throttled together do not come back
// together; capped at max_backoff_s. A server's Retry-After, when given, replaces it (capped
// too: a server asking for an hour must not stall a run that a human is watching).
double retry_delay_s(const BackoffOptions& options, int retry, std::optional<double> retry_after_s,
                     std::mt19937_64& rng);

// The delay a Retry-After header value asks for, in seconds: delta-seconds ("120", and
// fractional "0.5" as some servers send) or an HTTP-date (relative to `now`); nullopt when the
// value is neither. A date in the past is 0.
std::optional<double> parse_retry_after(std::string_view value, std::time_t now);

}  // namespace rlaif
