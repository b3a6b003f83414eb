// What `rlaif orpo` and `rlaif cpo` share: both train a policy on preference pairs with no
// reference model (algorithms/reference_free.h); each declares its own loss flags and this runs
// the rest identically (model, adapters, data, data parallelism, training loop).
#pragma once

#include <string>
#include <vector>

#include "algorithms/reference_free.h"
#include "tools/cli_flags.h"

namespace rlaif::cli {

// --model, the preference data flags (tools/preference_flags.h) and the trainer's.
void declare_reference_free_flags(Flags& flags);

// Trains --model with `options` (its method and loss settings filled in by the command; batch,
// seed and ranks from the flags) and finishes as every training command does. `loss_flags` are
// the command's own flags, recorded and checked on --resume.
int run_reference_free(const Flags& flags, ReferenceFreeOptions options, const char* command,
                       const std::vector<std::string>& loss_flags);

}  // namespace rlaif::cli
