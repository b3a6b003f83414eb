// The loss flags of the DPO family, shared by `rlaif dpo` and `rlaif online-dpo`: --beta,
// --loss (one or several summed, TRL's loss_type list), --loss-weights and --label-smoothing.
#pragma once

#include <string>
#include <vector>

#include "algorithms/dpo.h"
#include "tools/cli_flags.h"

namespace rlaif::cli {

void declare_dpo_loss_flags(Flags& flags);
// The flags above that define a run (for resume checks).
std::vector<std::string> dpo_loss_identity_flags();
// DpoOptions' loss terms, beta and label smoothing from the flags; UsageError naming the flag
// for a value out of range or a combination that would be silently ignored.
DpoOptions dpo_loss_options(const Flags& flags);

}  // namespace rlaif::cli
