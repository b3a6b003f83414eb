#include "tools/reward_flags.h"

#include <filesystem>

#include "algorithms/prompt_columns.h"
#include "io/http_batch.h"
#include "tools/chat_flags.h"

namespace rlaif::cli {

void declare_reward_flags(Flags& flags) {
  flags
      .repeatable("reward",
                  "a rule reward KIND[:ARG][@WEIGHT], repeat for several (their weighted sum): "
                  "exact-match:COL, regex:PATTERN, number:COL, json, length:N; e.g. --reward "
                  "exact-match:answer --reward length:64@0.1 (see README)")
      .option("reward-url", "",
              "a reward server's URL: POST {\"items\": [{\"prompt\", \"completion\", "
              "\"columns\"}]}, answer {\"scores\": [...]} (instead of a reward model)")
      .option("reward-url-batch", "64", "reward server: items per request at most")
      .option("reward-url-concurrency", "4", "reward server: requests in flight at once")
      .option("reward-url-timeout", "120", "reward server: seconds per request");
}

std::vector<RewardRule> reward_rules(const Flags& flags) {
  std::vector<RewardRule> rules;
  for (const std::string& spec : flags.values("reward")) {
    try {
      rules.push_back(parse_reward_rule(spec));
    } catch (const Error& e) {
      throw UsageError(std::string("--") + e.what());  // "--reward 'SPEC': ..."
    }
  }
  return rules;
}

void check_reward_url_flags(const Flags& flags) {
  if (flags.given("reward-url")) return;
  for (const char* f : {"reward-url-batch", "reward-url-concurrency", "reward-url-timeout"}) {
    if (flags.given(f)) throw UsageError(std::string("--") + f + " needs --reward-url");
  }
}

RewardServerOptions reward_server_options(const Flags& flags, const std::string& out_dir) {
  RewardServerOptions r;
  r.url = flags.str("reward-url");
  r.concurrency = static_cast<int>(flags.integer("reward-url-concurrency"));
  r.items_per_request = static_cast<int>(flags.integer("reward-url-batch"));
  r.timeout_s = flags.number("reward-url-timeout");
  if (r.concurrency < 1) throw UsageError("--reward-url-concurrency must be at least 1");
  if (r.items_per_request < 1) throw UsageError("--reward-url-batch must be at least 1");
  if (!(r.timeout_s > 0)) throw UsageError("--reward-url-timeout must be positive");
  if (!is_http_url(r.url))
    throw UsageError("--reward-url " + r.url + ": not an http:// or https:// URL");
  r.cache_path = (std::filesystem::path(out_dir) / "reward_requests.jsonl").string();
  return r;
}

std::unique_ptr<RewardFunction> reward_model_from_flags(const Flags& flags, const std::string& dir,
                                                        int64_t max_prompt_length, int64_t batch,
                                                        Device device) {
  RewardModelOptions o;
  o.chat = chat_template_from_flags(flags, dir);
  o.truncation.max_length = flags.integer("rm-max-length");
  o.truncation.max_prompt_length = max_prompt_length;
  o.batch = batch;
  return std::make_unique<RewardModelScorer>(dir, o, device);
}

std::unique_ptr<RewardFunction> with_rule_rewards(std::unique_ptr<RewardFunction> reward,
                                                  const std::vector<RewardRule>& rules,
                                                  const std::string& prompts_path) {
  if (rules.empty()) return reward;
  // The rules read only the columns they name.
  std::vector<std::string> columns;
  for (const RewardRule& rule : rules) {
    if (!rule.column().empty()) columns.push_back(rule.column());
  }
  auto rule_reward =
      std::make_unique<RuleReward>(rules, PromptColumns::load(prompts_path, columns));
  if (!reward) return rule_reward;
  std::vector<std::unique_ptr<RewardFunction>> parts;
  parts.push_back(std::move(reward));
  parts.push_back(std::move(rule_reward));
  return std::make_unique<SumOfRewards>(std::move(parts));
}

}  // namespace rlaif::cli
