#include "tools/critic_flags.h"

#include <cmath>
#include <filesystem>

#include "io/llm_client.h"
#include "tools/api_flags.h"

namespace rlaif::cli {

void declare_critic_client_flags(Flags& flags) {
  flags.option("critic-api", "", "the critic's OpenAI-compatible base URL")
      .option("critic-model", "", "the critic's model name")
      .option("critic-concurrency", "8", "critic requests in flight at once")
      .option("critic-max-rpm", "0", "critic requests per minute at most (0 = no limit)")
      .option("critic-timeout", "120", "seconds per critic request");
  declare_spend_flags(flags, "critic");
  flags.flag("dry-run",
             "estimate the critic requests and tokens of the run (each completion at its longest; "
             "the cache is not consulted), print it and exit without training or sending");
}

SpendEstimate scaled_estimate(const std::vector<CompletionRequest>& one_each, size_t prompts,
                              int64_t judgments) {
  SpendEstimate e;
  if (prompts == 0 || one_each.empty()) return e;
  int64_t prompt_tokens = 0;  // of one_each
  for (const CompletionRequest& r : one_each) {
    std::string text = r.prompt;
    for (const ChatMessage& m : r.messages) text += m.content;
    prompt_tokens += estimate_tokens(text);
  }
  const double per_judgment = 1.0 / static_cast<double>(prompts);
  const double scale = static_cast<double>(judgments) * per_judgment;
  e.requests = static_cast<int64_t>(std::llround(static_cast<double>(one_each.size()) * scale));
  e.prompt_tokens = static_cast<int64_t>(std::ceil(static_cast<double>(prompt_tokens) * scale));
  e.max_completion_tokens = e.requests * one_each.front().max_tokens;
  return e;
}

ClientOptions critic_client_options(const Flags& flags, const std::string& out_dir) {
  ClientOptions c;
  c.api_base = flags.str("critic-api");
  c.model = flags.str("critic-model");
  c.api_key = api_key_from_env();
  c.concurrency = static_cast<int>(flags.integer("critic-concurrency"));
  c.max_rpm = flags.number("critic-max-rpm");
  c.timeout_s = flags.number("critic-timeout");
  if (c.model.empty()) throw UsageError("--critic-api needs --critic-model");
  if (c.concurrency < 1) throw UsageError("--critic-concurrency must be at least 1");
  if (c.max_rpm < 0) throw UsageError("--critic-max-rpm must not be negative");
  if (!(c.timeout_s > 0)) throw UsageError("--critic-timeout must be positive");
  c.spend_limits = spend_limits(flags);
  c.cache_path = (std::filesystem::path(out_dir) / "requests.jsonl").string();
  return c;
}

}  // namespace rlaif::cli
