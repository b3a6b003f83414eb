#include "tools/api_flags.h"

#include <cstdio>
#include <filesystem>

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
              "default: requests.jsonl beside --out");
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

size_t report_failures(const std::string& command, const std::vector<CompletionResult>& results,
                       size_t show) {
  size_t failed = 0;
  for (const CompletionResult& r : results) {
    if (r.ok) continue;
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
