// The reward flags shared by `rlaif ppo` and `rlaif online-dpo`: rule rewards (--reward,
// repeatable, algorithms/rule_rewards.h) and a reward server (--reward-url and its client flags,
// algorithms/server_reward.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "algorithms/reward_function.h"
#include "algorithms/rule_rewards.h"
#include "algorithms/server_reward.h"
#include "tools/cli_flags.h"

namespace rlaif::cli {

// --reward KIND[:ARG][@WEIGHT] (repeatable), --reward-url, --reward-url-batch,
// --reward-url-concurrency, --reward-url-timeout.
void declare_reward_flags(Flags& flags);

// --reward's rules, each parsed and checked (a regex compiled) before anything loads; UsageError
// naming the rule otherwise.
std::vector<RewardRule> reward_rules(const Flags& flags);

// The reward server's client: --reward-url and its flags, answers cached in
// OUT/reward_requests.jsonl. Creates nothing; UsageError naming the flag for a bad value, and for
// a --reward-url-* flag given without --reward-url.
RewardServerOptions reward_server_options(const Flags& flags, const std::string& out_dir);
void check_reward_url_flags(const Flags& flags);

// The reward model of --reward-model `dir`, reading prompts as its own chat template (or
// --chat-template) renders them, at most --rm-max-length tokens (prompts cut to
// `max_prompt_length`), `batch` sequences per forward pass.
std::unique_ptr<RewardFunction> reward_model_from_flags(const Flags& flags, const std::string& dir,
                                                        int64_t max_prompt_length, int64_t batch,
                                                        Device device);

// `reward` plus the rules' weighted scores (SumOfRewards), or the rules alone when `reward` is
// null; unchanged without rules. The rules read the columns they name from the records of the
// prompts file `prompts_path`.
std::unique_ptr<RewardFunction> with_rule_rewards(std::unique_ptr<RewardFunction> reward,
                                                  const std::vector<RewardRule>& rules,
                                                  const std::string& prompts_path);

}  // namespace rlaif::cli
