#include "tools/critic_flags.h"

#include <filesystem>

#include "io/llm_client.h"

namespace rlaif::cli {

void declare_critic_client_flags(Flags& flags) {
  flags.option("critic-api", "", "the critic's OpenAI-compatible base URL")
      .option("critic-model", "", "the critic's model name")
      .option("critic-concurrency", "8", "critic requests in flight at once")
      .option("critic-max-rpm", "0", "critic requests per minute at most (0 = no limit)")
      .option("critic-timeout", "120", "seconds per critic request");
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
  c.cache_path = (std::filesystem::path(out_dir) / "requests.jsonl").string();
  return c;
}

}  // namespace rlaif::cli
