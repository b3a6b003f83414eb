// The LoRA flags (model/lora.h): --lora-r and its companions on every training command, and
// --adapter, which loads an existing PEFT adapter directory (io/peft_adapter.h), on every command
// that takes --model.
#pragma once

#include <string>
#include <vector>

#include "model/transformer.h"
#include "tools/cli_flags.h"

namespace rlaif::cli {

// Declares --lora-r --lora-alpha --lora-dropout --lora-targets --lora-modules-to-save
// --lora-rslora and --adapter (continued training of an adapter).
void declare_lora_flags(Flags& flags);
// Their names: each one defines a run, so a resume must give the same.
std::vector<std::string> lora_flag_names();

// The adapters the --lora-* flags ask for (r = 0: none); UsageError for a malformed value.
LoraConfig lora_config_from_flags(const Flags& flags);

// Makes a loaded model ready to train under the flags:
//   --adapter DIR: the adapter is loaded and trained further;
//   --lora-r R > 0: fresh adapters (A drawn from `seed`, B = 0, so training starts at the model);
//   neither: every weight trains.
// With adapters the base is frozen and only the adapters train, and a model with a scalar head
// trains its own copy of the head too (PEFT's SEQ_CLS task saves "score" whatever
// --lora-modules-to-save says). Activation recompute follows --recompute. Returns whether the
// model trains adapters; `label` (a command name) starts the line that says what trains, printed
// when `lead`.
bool prepare_for_training(Transformer& model, const Flags& flags, uint64_t seed,
                          const std::string& label, bool lead);

// --adapter for commands that run a model (generate, serve, score, eval-loss, ...).
void declare_adapter_flag(Flags& flags);
// Loads --adapter's adapter onto `model` when the flag was given (the adapters stay separate,
// so outputs are exactly those of the model that trained them). Returns whether it did.
bool apply_adapter_flag(Transformer& model, const Flags& flags);

}  // namespace rlaif::cli
