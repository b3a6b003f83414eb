#include "io/spend_estimate.h"

#include <filesystem>
#include <memory>
#include <unordered_set>

#include "io/request_cache.h"
#include "io/spend_meter.h"

namespace rlaif {

void SpendEstimate::add(const SpendEstimate& other) {
  requests += other.requests;
  cached += other.cached;
  prompt_tokens += other.prompt_tokens;
  max_completion_tokens += other.max_completion_tokens;
}

SpendEstimate estimate_spend(const std::vector<CompletionRequest>& requests,
                             const std::string& model, const std::string& cache_path) {
  // Read only: a dry run must not create the cache file (RequestCache opens it for appending).
  std::unique_ptr<RequestCache> cache;
  std::error_code ec;
  if (!cache_path.empty() && std::filesystem::exists(cache_path, ec)) {
    cache = std::make_unique<RequestCache>(cache_path);
  }
  SpendEstimate e;
  std::unordered_set<std::string> seen;
  for (const CompletionRequest& r : requests) {
    const std::string key = request_key(request_body(r, model));
    if ((cache && cache->find(key) != nullptr) || !seen.insert(key).second) {
      ++e.cached;
      continue;
    }
    ++e.requests;
    std::string text = r.prompt;
    for (const ChatMessage& m : r.messages) text += m.content;
    e.prompt_tokens += estimate_tokens(text);
    e.max_completion_tokens += r.max_tokens;
  }
  return e;
}

std::string describe_estimate(const SpendEstimate& e) {
  return "dry run: " + std::to_string(e.requests) + " requests (" + std::to_string(e.cached) +
         " more answered by the cache), ~" + std::to_string(e.prompt_tokens) +
         " prompt tokens (estimated at 4 bytes a token), at most " +
         std::to_string(e.max_completion_tokens) +
         " completion tokens (the requests' max_tokens); nothing sent";
}

}  // namespace rlaif
