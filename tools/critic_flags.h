// The flags of an LLM critic over the OpenAI-compatible API, shared by the training commands
// that ask one (`rlaif ppo --critic-api`, `rlaif online-dpo --critic-api`): where it is, which
// model, and how hard to press it.
#pragma once

#include <string>

#include "io/llm_client.h"
#include "tools/cli_flags.h"

namespace rlaif::cli {

// --critic-api --critic-model --critic-concurrency --critic-max-rpm --critic-timeout.
void declare_critic_client_flags(Flags& flags);

// The critic's client from those flags, the key from OPENAI_API_KEY, answers cached in
// OUT/requests.jsonl (so a resumed run re-asks nothing it already asked). Creates nothing;
// UsageError naming the flag for a value out of range.
ClientOptions critic_client_options(const Flags& flags, const std::string& out_dir);

}  // namespace rlaif::cli
