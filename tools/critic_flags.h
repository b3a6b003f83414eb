// The flags of an LLM critic over the OpenAI-compatible API, shared by the training commands
// that ask one (`rlaif ppo --critic-api`, `rlaif online-dpo --critic-api`): where it is, which
// model, and how hard to press it.
#pragma once

#include <string>
#include <vector>

#include "io/llm_client.h"
#include "io/spend_estimate.h"
#include "tools/cli_flags.h"

namespace rlaif::cli {

// --critic-api --critic-model --critic-concurrency --critic-max-rpm --critic-timeout, the
// critic's spending limits --max-requests --max-total-tokens (tools/api_flags.h) and --dry-run.
void declare_critic_client_flags(Flags& flags);

// --dry-run of a training command: what `judgments` judgments will send the critic, scaled from
// `one_each`, the requests of one judgment of each of `prompts` prompts (the completions at their
// longest). The cache is not consulted: the completions are not known before training.
SpendEstimate scaled_estimate(const std::vector<CompletionRequest>& one_each, size_t prompts,
                              int64_t judgments);

// The critic's client from those flags, the key from OPENAI_API_KEY, answers cached in
// OUT/requests.jsonl (so a resumed run re-asks nothing it already asked), spending at most the
// limits. Creates nothing;
// UsageError naming the flag for a value out of range.
ClientOptions critic_client_options(const Flags& flags, const std::string& out_dir);

}  // namespace rlaif::cli
