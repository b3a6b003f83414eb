// --overwrite for the commands whose output cannot be continued (a scoring, a trained tokenizer,
// generated tasks): an output that already exists is refused,
// naming it, unless --overwrite says to replace it. (Training commands have their own check,
// tools/train_flags.h, with --resume; distill, label, sample and generate continue a partial
// output instead, and eval rewrites its judgments from the answer cache beside them.)
#pragma once

#include <string>
#include <vector>

#include "tools/cli_flags.h"

namespace rlaif::cli {

void declare_overwrite_flag(Flags& flags);

// UsageError naming the outputs among `paths` that exist, unless --overwrite was given. Empty
// paths (an output not asked for) are skipped.
void check_outputs_free(const Flags& flags, const std::vector<std::string>& paths);

}  // namespace rlaif::cli
