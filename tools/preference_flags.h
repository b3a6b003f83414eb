// The data flags `rlaif rm` and `rlaif dpo` share (preference file, held-out split, batch,
// truncation, chat template), declared and read in one place so both commands document and
// tokenise them identically.
#pragma once

#include <string>
#include <vector>

#include "algorithms/preference_data.h"
#include "io/tokenizer.h"
#include "model/transformer.h"
#include "tools/cli_flags.h"

namespace rlaif::cli {

// --data --val-data --val-fraction --batch --max-length --max-prompt-length --chat-template.
void declare_preference_flags(Flags& flags);

// The flags above that define a run (for resume checks).
std::vector<std::string> preference_identity_flags();

// Truncation from the flags; an unset --max-length is capped at the model's context.
TruncationOptions truncation_from_flags(const Flags& flags, const ModelConfig& config);

struct PreferenceSplits {
  std::vector<TokenizedPair> train, val;
};

// Loads --data (margins from `margin_key` when non-empty), holds out --val-data or the last
// --val-fraction of the pairs, and tokenises both with the chat template of the model in
// `model_dir` (or --chat-template). Reports the template, the counts and the first chosen
// sequence on stderr as `command` when `report` (data-parallel ranks other than 0 stay quiet).
PreferenceSplits load_preference_splits(const Flags& flags, const std::string& model_dir,
                                        const Tokenizer& tokenizer, const ModelConfig& config,
                                        const std::string& margin_key, const char* command,
                                        bool report = true);

}  // namespace rlaif::cli
