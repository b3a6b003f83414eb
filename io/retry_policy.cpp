#include "io/retry_policy.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

namespace rlaif {

bool is_retryable_status(long http_status) {
  if (http_status == 429 || http_status == 408) return true;
  return http_status >= 500 && http_status <= 599 && http_status != 501;
}

bool is_retryable_transport_error(int curl_code) {
  switch (static_cast<CURLcode>(curl_code)) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:  // DNS hiccups happen over a day-long run
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:  // the connection dropped mid-reply
    case CURLE_GOT_NOTHING:   // ... or before any reply
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SSL_CONNECT_ERROR:  // handshake cut short (a bad certificate is another code)
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_AGAIN:
      return true;
    default:
      return false;
  }
}

double retry_delay_s(const BackoffOptions& options, int retry, std::optional<double> retry_after_s,
                     std::mt19937_64& rng) {
  double cap = std::max(0.0, options.max_backoff_s);
  if (retry_after_s) return std::clamp(*retry_after_s, 0.0, cap);
  double base = options.backoff_s * std::ldexp(1.0, std::clamp(retry, 1, 60) - 1);
  double jitter = std::uniform_real_distribution<double>(0.5, 1.5)(rng);
  return std::clamp(base * jitter, 0.0, cap);
}

std::optional<double> parse_retry_after(std::string_view value, std::time_t now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r' ||
                            value.back() == '\n')) {
    value.remove_suffix(1);
  }
  if (value.empty()) return std::nullopt;
  if (value.front() >= '0' && value.front() <= '9') {
    // from_chars, not stod: the decimal point must not depend on the locale.
    double seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc() || end != value.data() + value.size() || !std::isfinite(seconds)) {
      return std::nullopt;
    }
    return seconds;
  }
  // An HTTP-date starts with the day's name ("Wed, 21 Oct 2015 07:28:00 GMT").
  if (!std::isalpha(static_cast<unsigned char>(value.front()))) return std::nullopt;
  std::string text(value);
  std::time_t when = curl_getdate(text.c_str(), nullptr);
  if (when == -1) return std::nullopt;
  return std::max(0.0, std::difftime(when, now));
}

}  // namespace rlaif
