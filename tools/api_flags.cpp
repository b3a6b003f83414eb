#include "tools/api_flags.h"

#include <cstdio>
#include <filesystem>

#include "io/jsonl.h"
#include "runtime/error.h"

namespace rlaif::cli {

void declare_api_flags(Flags& flags, const std::string& role) {
  flags
      .option("api-base", "",
              "the " + role +
                  "'s OpenAI-compatible base URL, e.g. https://api.openai.com/v1 or "
                  "http://127.0.0.1:8080/v1 (key from OPENAI_API_KEY)",
              true)
      .option("api-model", "", "the " + role + "'s model name (the requests' \"model\")", true)
      .option("concurrency", "8", "requests in flight at once")
      .option("max-rpm", "0", "requests started per minute at most (0 = no limit)")
      .option("timeout", "120", "seconds per HTTP request")
      .option("max-attempts", "8",
              "tries per request (429, 5xx, timeouts and dropped connections are retried with "
              "exponential backoff)")
      .option("cache", "",
              "request cache (JSONL, appended as answers arrive; a re-run sends nothing twice); "
              "default: requests.jsonl beside --out")
      .flag("dry-run",
            "estimate the requests and tokens the run would spend (the cache's answers are "
            "free), print it and exit without sending anything");
  declare_spend_flags(flags, "API");
}

void declare_spend_flags(Flags& flags, const std::string& what) {
  flags
      .option("max-requests", "0",
              what +
                  " requests to send at most, retries included (cached answers are free); at "
                  "the limit the run stops cleanly, exit status 3 (0 = no limit)")
      .option("max-total-tokens", "0",
              "prompt + completion tokens (the responses' usage) to spend at most; the run stops "
              "once they are reached, exit status 3 (0 = no limit)");
}

SpendLimits spend_limits(const Flags& flags) {
  SpendLimits limits;
  limits.max_requests = flags.integer("max-requests");
  limits.max_tokens = flags.integer("max-total-tokens");
  if (limits.max_requests < 0) throw UsageError("--max-requests must not be negative");
  if (limits.max_tokens < 0) throw UsageError("--max-total-tokens must not be negative");
  return limits;
}

bool report_spend(const std::string& command, const LlmClient& client) {
  std::fprintf(stderr, "%s: spent %s\n", command.c_str(), describe_spend(client.spent()).c_str());
  if (!client.stopped_by_spend_limit()) return false;
  const std::string& cache = client.options().cache_path;
  std::fprintf(stderr,
               "%s: stopped by the spending limit %s: the answers paid for are cached%s%s; re-run "
               "with a higher limit to continue\n",
               command.c_str(), client.reached_spend_limit().c_str(), cache.empty() ? "" : " in ",
               cache.c_str());
  return true;
}

void print_dry_run(const std::string& command, const SpendEstimate& e) {
  std::fprintf(stderr, "%s: %s\n", command.c_str(), describe_estimate(e).c_str());
  rapidjson::Document summary(rapidjson::kObjectType);
  auto& a = summary.GetAllocator();
  summary.AddMember("dry_run", true, a);
  summary.AddMember("requests", e.requests, a);
  summary.AddMember("cached", e.cached, a);
  summary.AddMember("prompt_tokens", e.prompt_tokens, a);
  summary.AddMember("max_completion_tokens", e.max_completion_tokens, a);
  std::printf("%s\n", to_json_line(summary).c_str());
}

ClientOptions api_client_options(const Flags& flags, const std::string& default_cache) {
  ClientOptions o;
  o.api_base = flags.str("api-base");
  o.model = flags.str("api-model");
  o.api_key = api_key_from_env();
  o.concurrency = static_cast<int>(flags.integer("concurrency"));
  o.max_rpm = flags.number("max-rpm");
  o.timeout_s = flags.number("timeout");
  o.max_attempts = static_cast<int>(flags.integer("max-attempts"));
  if (o.concurrency < 1) throw UsageError("--concurrency must be at least 1");
  if (o.max_rpm < 0) throw UsageError("--max-rpm must not be negative");
  if (!(o.timeout_s > 0)) throw UsageError("--timeout must be positive");
  if (o.max_attempts < 1) throw UsageError("--max-attempts must be at least 1");
  o.spend_limits = spend_limits(flags);
  o.cache_path = flags.given("cache") ? flags.str("cache") : default_cache;
  if (!o.cache_path.empty()) ensure_parent_dir(o.cache_path);
  return o;
}

void ensure_parent_dir(const std::string& file) {
  const std::filesystem::path dir = std::filesystem::path(file).parent_path();
  std::error_code ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  RLAIF_CHECK(!ec, "cannot create the directory ", dir.string(), " for ", file, ": ", ec.message());
}

std::string cache_beside(const std::string& out_file) {
  return (std::filesystem::path(out_file).parent_path() / "requests.jsonl").string();
}

bool not_sent(const CompletionResult& result) {
  return !result.ok && result.error == kNotSentSpendLimit;
}

size_t report_failures(const std::string& command, const std::vector<CompletionResult>& results,
                       size_t show) {
  size_t failed = 0;
  for (const CompletionResult& r : results) {
    if (r.ok || not_sent(r)) continue;
    if (failed++ < show) std::fprintf(stderr, "%s: %s\n", command.c_str(), r.error.c_str());
  }
  if (failed > show) {
    std::fprintf(stderr, "%s: ... and %zu more failed requests\n", command.c_str(), failed - show);
  }
  return failed;
}

void add_usage(rapidjson::Document& summary, const ApiUsage& usage) {
  auto& a = summary.GetAllocator();
  summary.AddMember("requests_sent", usage.requests_sent, a);
  summary.AddMember("cached", usage.cached, a);
  summary.AddMember("prompt_tokens", usage.prompt_tokens, a);
  summary.AddMember("completion_tokens", usage.completion_tokens, a);
}

void add_spend(rapidjson::Document& summary, const LlmClient& client) {
  auto& a = summary.GetAllocator();
  const Spend spent = client.spent();
  rapidjson::Value s(rapidjson::kObjectType);
  s.AddMember("requests", spent.requests, a);
  s.AddMember("prompt_tokens", spent.prompt_tokens, a);
  s.AddMember("completion_tokens", spent.completion_tokens, a);
  s.AddMember("estimated_responses", spent.estimated_responses, a);
  summary.AddMember("spent", s, a);
  summary.AddMember("stopped_by_spend_limit", client.stopped_by_spend_limit(), a);
}

std::string spend_members(const LlmClient& client, bool stopped) {
  const Spend s = client.spent();
  char text[256];
  std::snprintf(text, sizeof text,
                ", \"spent\": {\"requests\": %lld, \"prompt_tokens\": %lld, \"completion_tokens\": "
                "%lld, \"estimated_responses\": %lld}, \"stopped_by_spend_limit\": %s",
                static_cast<long long>(s.requests), static_cast<long long>(s.prompt_tokens),
                static_cast<long long>(s.completion_tokens),
                static_cast<long long>(s.estimated_responses), stopped ? "true" : "false");
  return text;
}

int end_summary_line(const LlmClient* api, const std::string& spend_limit_stop,
                     const std::string& checkpoint, const std::string& out_dir) {
  const bool stopped = !spend_limit_stop.empty();
  if (api != nullptr) std::printf("%s", spend_members(*api, stopped).c_str());
  if (stopped) {
    std::printf(", \"checkpoint\": \"%s\"}\n", checkpoint.c_str());
    return kSpendLimitExit;
  }
  std::printf(", \"model\": \"%s\"}\n", out_dir.c_str());
  return 0;
}

void add_string(rapidjson::Value& object, const char* key, std::string_view value,
                rapidjson::Document::AllocatorType& a) {
  object.AddMember(
      rapidjson::StringRef(key),
      rapidjson::Value(value.data(), static_cast<rapidjson::SizeType>(value.size()), a), a);
}

rapidjson::Value string_array(const std::vector<std::string>& values,
                              rapidjson::Document::AllocatorType& a) {
  rapidjson::Value array(rapidjson::kArrayType);
  for (const std::string& s : values) {
    array.PushBack(rapidjson::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a), a);
  }
  return array;
}

}  // namespace rlaif::cli
