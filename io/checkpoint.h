// Training checkpoints: what the run trains, as the run's final output holds it (a model directory,
// loadable by every command and by Hugging Face transformers; or, for a run that trains LoRA
// adapters, a PEFT adapter directory: adapter_config.json and adapter_model.safetensors, with the
// tokenizer files), plus `trainer_state/`:
//   trainer_state/state.safetensors  named tensors the trainer hands over (optimizer moments,
//                                    master weights); io/ does not know what they mean
//   trainer_state/state.json         {"format": 1, "step": N, ...the trainer's own fields}
//
// A checkpoint directory appears atomically: it is written under a temporary name beside its
// final one, every file fsynced, then renamed into place and the parent fsynced. A crash at any
// point leaves either the previous checkpoints alone or the new one complete.
//
// Checkpoints of a run live in OUT/checkpoints/step_00000100 (zero-padded so names sort).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/transformer.h"

namespace rlaif {

struct TrainerCheckpoint {
  std::string dir;         // the checkpoint directory
  int64_t step = 0;        // optimizer steps completed
  std::string state_json;  // trainer_state/state.json
  NamedTensors tensors;    // trainer_state/state.safetensors (memory-mapped)
};

// OUT/checkpoints/step_<step> for a run directory.
std::string checkpoint_dir(const std::string& run_dir, int64_t step);

// Writes model + trainer state atomically to checkpoint_dir(run_dir, step), with the tokenizer
// files of `tokenizer_source` (as save_model copies them); `state_json` must be a JSON object
// holding at least "step". A model with adapters is written as its adapters only
// (save_trained_model; `base_model` goes into adapter_config.json). Returns the directory.
std::string save_checkpoint(const std::string& run_dir, int64_t step, const Transformer& model,
                            const std::string& tokenizer_source, const std::string& state_json,
                            const NamedTensors& state_tensors, const std::string& base_model = "");

// The checkpoint directories of a run, oldest first (complete ones only: temporary directories
// of an interrupted save are ignored, and removed by prune_checkpoints).
std::vector<std::string> list_checkpoints(const std::string& run_dir);

// Keeps the newest `keep` checkpoints (keep ≤ 0 keeps all) and removes leftover temporaries.
void prune_checkpoints(const std::string& run_dir, int64_t keep);

// `path` is a checkpoint directory, or a run directory whose newest checkpoint is meant; returns
// the checkpoint directory or Error saying none exists.
std::string resolve_checkpoint(const std::string& path);

// Reads trainer_state/ of a checkpoint directory (the model is loaded with load_model). Errors
// name the checkpoint and what is wrong: missing or unparsable state.json, a truncated or corrupt
// state.safetensors, an unknown format version.
TrainerCheckpoint read_trainer_state(const std::string& checkpoint);

}  // namespace rlaif
