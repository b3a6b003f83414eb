// The frozen reference of `rlaif dpo` and `rlaif kto` (--ref, --precompute-ref), set up in one
// place: a live model scored on every batch, or log-prob tables computed once and cached in
// OUT/ref_logprobs.safetensors (algorithms/reference_logprobs.h, cached_ref_logprobs).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "algorithms/dpo.h"
#include "runtime/communicator.h"
#include "tools/cli_flags.h"

namespace rlaif::cli {

// The reference from --ref (default: the starting policy, `model_dir`) and --precompute-ref:
//   --precompute-ref: tables for `train` and `val`, read from OUT/ref_logprobs.safetensors when it
//     holds them for this reference and these sequences, else computed (`batch` per forward pass,
//     sliced over the ranks of `comm`) and written there; the reference is then freed.
//   otherwise a live model: with adapters (`adapters`) and no --ref, the policy itself with its
//     adapters off (a second handle on the same frozen base, as TRL does with PEFT); else --ref
//     loaded, frozen. `keep_alive` holds it and must outlive the returned reference.
// `command` names the command in what it prints (on rank 0 only, `lead`).
DpoReference reference_from_flags(const Flags& flags, const Transformer& policy, bool adapters,
                                  const std::string& model_dir, const std::string& out_dir,
                                  const std::vector<TokenizedPair>& train,
                                  const std::vector<TokenizedPair>& val, int64_t batch,
                                  Communicator& comm, bool lead, const char* command,
                                  std::unique_ptr<Transformer>& keep_alive);

}  // namespace rlaif::cli
