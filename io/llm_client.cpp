#include "io/llm_client.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "io/api_response.h"
#include "io/http_batch.h"
#include "io/sha256.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

std::string compact_count(int64_t n) {
  char buf[32];
  if (n < 1000) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  } else if (n < 1000000) {
    std::snprintf(buf, sizeof buf, "%.1fk", static_cast<double>(n) / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(n) / 1e6);
  }
  return buf;
}

}  // namespace

struct LlmClient::Impl {
  ClientOptions options;
  std::string base;  // api_base without its trailing slashes
  SpendMeter spend;
  HttpBatchClient http;
  ApiUsage usage;

  Impl(ClientOptions o, std::string base_url, bool loopback)
      : options(std::move(o)),
        base(std::move(base_url)),
        spend(options.spend_limits),
        http(HttpBatchOptions{base, options.api_key, loopback, options.concurrency, options.max_rpm,
                              options.timeout_s, options.max_attempts, options.backoff_s,
                              options.max_backoff_s, options.cache_path, &spend}) {}
};

LlmClient::LlmClient(ClientOptions options) {
  const ClientOptions& o = options;
  RLAIF_CHECK(!o.api_base.empty(),
              "--api-base is empty: give the API's base URL, e.g. "
              "https://api.openai.com/v1 or http://127.0.0.1:8080/v1");
  std::optional<UrlParts> url = parse_url(o.api_base);
  RLAIF_CHECK(url && (url->scheme == "http" || url->scheme == "https") && !url->host.empty(),
              "--api-base ", o.api_base, ": not an http:// or https:// URL");
  RLAIF_CHECK(!o.model.empty(), "--api-model is empty: give the model name the API expects");
  for (char c : o.api_key) {
    RLAIF_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f,
                "OPENAI_API_KEY contains a control character (a stray newline?)");
  }
  bool loopback = is_loopback_host(url->host);
  RLAIF_CHECK(o.api_key.empty() || url->scheme == "https" || loopback, "--api-base ", o.api_base,
              ": refusing to send OPENAI_API_KEY over plain http to ", url->host,
              "; use https (or a loopback address for a local server)");
  RLAIF_CHECK(o.concurrency >= 1, "--concurrency must be at least 1 (got ", o.concurrency, ")");
  RLAIF_CHECK(std::isfinite(o.max_rpm) && o.max_rpm >= 0,
              "--max-rpm must be >= 0 (0 = no limit; got ", o.max_rpm, ")");
  RLAIF_CHECK(std::isfinite(o.timeout_s) && o.timeout_s > 0,
              "--timeout must be a positive number of seconds (got ", o.timeout_s, ")");
  RLAIF_CHECK(o.spend_limits.max_requests >= 0 && o.spend_limits.max_tokens >= 0,
              "--max-requests and --max-total-tokens must be >= 0 (0 = no limit; got ",
              o.spend_limits.max_requests, " and ", o.spend_limits.max_tokens, ")");
  RLAIF_CHECK(o.max_attempts >= 1, "--max-attempts must be at least 1 (got ", o.max_attempts, ")");
  RLAIF_CHECK(std::isfinite(o.backoff_s) && o.backoff_s >= 0 && std::isfinite(o.max_backoff_s) &&
                  o.max_backoff_s >= 0,
              "--backoff and --max-backoff must be >= 0 seconds (got ", o.backoff_s, " and ",
              o.max_backoff_s, ")");
  std::string base = o.api_base;
  while (!base.empty() && base.back() == '/') base.pop_back();
  impl_ = std::make_unique<Impl>(std::move(options), std::move(base), loopback);
}

LlmClient::~LlmClient() = default;

std::vector<CompletionResult> LlmClient::complete_all(
    const std::vector<CompletionRequest>& requests,
    const std::function<void(size_t, const CompletionResult&)>& on_result) {
  auto name_of = [&](size_t i) {
    return requests[i].item.empty() ? "request " + std::to_string(i + 1) : requests[i].item;
  };
  // Bodies first, so that a malformed request throws before anything is sent.
  std::vector<HttpPost> posts;
  std::vector<bool> chat;
  posts.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const CompletionRequest& r = requests[i];
    RLAIF_CHECK(std::isfinite(r.temperature) && r.temperature >= 0, name_of(i),
                ": temperature must be a finite number >= 0 (got ", r.temperature, ")");
    RLAIF_CHECK(r.max_tokens >= 1, name_of(i), ": max_tokens must be at least 1 (got ",
                r.max_tokens, ")");
    chat.push_back(!r.messages.empty());
    std::string body = request_body(r, impl_->options.model);
    std::string key = request_key(body);
    posts.push_back(HttpPost{impl_->base + (chat.back() ? "/chat/completions" : "/completions"),
                             std::move(body), std::move(key), r.item});
  }
  auto read = [&](std::string_view body, size_t i, ParsedCompletion& out) {
    return parse_completion_response(body, chat[i], out);
  };
  ApiUsage& usage = impl_->usage;
  auto completion = [&](const HttpPostResult& p) {
    CompletionResult r;
    r.ok = p.ok;
    r.from_cache = p.from_cache;
    r.attempts = p.attempts;
    r.retry_wait_s = p.retry_wait_s;
    r.error = p.error;
    if (p.ok) {
      r.text = p.answer.text;
      r.finish_reason = p.answer.finish_reason;
      r.prompt_tokens = p.answer.prompt_tokens;
      r.completion_tokens = p.answer.completion_tokens;
      usage.prompt_tokens += r.prompt_tokens;
      usage.completion_tokens += r.completion_tokens;
      usage.cached += r.from_cache;
    }
    return r;
  };
  // Each finished item is converted once, as it finishes; the interrupted ones at the end.
  std::vector<CompletionResult> results(requests.size());
  std::vector<bool> done(requests.size(), false);
  const std::vector<HttpPostResult> posted =
      impl_->http.post_all(posts, read, [&](size_t i, const HttpPostResult& p) {
        results[i] = completion(p);
        done[i] = true;
        if (on_result) on_result(i, results[i]);
      });
  for (size_t i = 0; i < posted.size(); ++i) {
    if (!done[i]) results[i] = completion(posted[i]);
  }
  return results;
}

CompletionResult LlmClient::complete(const CompletionRequest& request) {
  return complete_all({request}).front();
}

void LlmClient::set_stop_check(std::function<bool()> should_stop) {
  impl_->http.set_stop_check(std::move(should_stop));
}

const ApiUsage& LlmClient::usage() const {
  impl_->usage.requests_sent = impl_->http.requests_sent();
  impl_->usage.failed = impl_->http.failed();
  return impl_->usage;
}

Spend LlmClient::spent() const {
  return impl_->spend.spent();
}

bool LlmClient::stopped_by_spend_limit() const {
  return impl_->spend.stopped_by_limit();
}

std::string LlmClient::reached_spend_limit() const {
  return impl_->spend.reached_limit();
}

std::string LlmClient::usage_summary() const {
  const ApiUsage& u = usage();
  std::string s = std::to_string(u.requests_sent) + " requests (" +
                  std::to_string(impl_->http.retries()) + " retried), " + std::to_string(u.cached) +
                  " cached";
  if (u.failed > 0) s += ", " + std::to_string(u.failed) + " failed";
  return s + "; " + compact_count(u.prompt_tokens) + " prompt + " +
         compact_count(u.completion_tokens) + " completion tokens";
}

const ClientOptions& LlmClient::options() const {
  return impl_->options;
}

std::string api_key_from_env() {
  const char* key = std::getenv("OPENAI_API_KEY");
  if (key == nullptr) return "";
  // Keys pasted from files keep their newline; the header must not.
  std::string s(key);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  while (!s.empty() && s.front() == ' ') s.erase(s.begin());
  return s;
}

bool is_loopback_url(const std::string& url) {
  std::optional<UrlParts> parts = parse_url(url);
  return parts && is_loopback_host(parts->host);
}

std::string request_body(const CompletionRequest& request, const std::string& model) {
  RLAIF_CHECK(std::isfinite(request.temperature), "request_body: temperature is not finite");
  // Written field by field in a fixed order, so that the same request always hashes to the same
  // cache key.
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto str = [&](const std::string& s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  };
  w.StartObject();
  w.Key("model");
  str(model);
  if (!request.messages.empty()) {
    w.Key("messages");
    w.StartArray();
    for (const ChatMessage& m : request.messages) {
      w.StartObject();
      w.Key("role");
      str(m.role);
      w.Key("content");
      str(m.content);
      w.EndObject();
    }
    w.EndArray();
  } else {
    w.Key("prompt");
    str(request.prompt);
  }
  w.Key("temperature");
  w.Double(request.temperature);
  w.Key("max_tokens");
  w.Int64(request.max_tokens);
  if (request.seed) {
    w.Key("seed");
    w.Uint64(*request.seed);
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string request_key(const std::string& body) {
  return sha256_hex(body);
}

}  // namespace rlaif
