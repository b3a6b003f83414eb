// The flags every training command shares (optimizer, schedule, loop, checkpoints), declared
// once so that pretrain, sft, rm, dpo and ppo document and parse them identically.
#pragma once

#include <string>
#include <vector>

#include "algorithms/trainer.h"
#include "io/llm_client.h"
#include "tools/cli_flags.h"

namespace rlaif::cli {

// Declares --out --steps --lr --min-lr --warmup --schedule --weight-decay --beta1 --beta2 --eps
// --grad-clip --grad-accum --seed --eval-every --save-every --keep --resume --device --dtype --zero
// --recompute, and the LoRA flags (tools/lora_flags.h), with the given defaults for steps and lr.
void declare_trainer_flags(Flags& flags, const std::string& default_steps,
                           const std::string& default_lr);

// The device --device names, for one rank of a data-parallel job: a bare "cuda" under an MPI
// launcher means the GPU whose index is this rank's rank on its machine (so `mpirun -np 8 rlaif
// ... --device cuda` on an 8-GPU machine uses all eight); "cuda:N" is taken as written.
Device training_device(const Flags& flags);

// The parameter dtype --dtype names (f32 or bf16); UsageError otherwise.
DType model_dtype(const Flags& flags);

// Fills TrainerOptions from the flags. `settings` records every flag's value; the ones named in
// `identity` must match on --resume.
TrainerOptions trainer_options(const Flags& flags, const std::vector<std::string>& all_flags,
                               const std::vector<std::string>& identity);

// The flags that define a run's optimisation (everything but steps, logging and checkpointing),
// the LoRA flags included.
std::vector<std::string> trainer_identity_flags();

// Refuses (UsageError naming the directory and both flags) an --out `dir` that holds a run or a
// model (io/run_directory.h) unless `resume`; with `overwrite`, removes those entries first
// (rank 0 alone checks and removes). --overwrite with --resume is a UsageError.
void check_run_directory(const std::string& dir, bool resume, bool overwrite);

// How a training command ends: 128 + the signal when one stopped it (after saving); else rank 0
// (`lead`) prints one JSON line, {"steps", "loss", the last evaluation's metrics,
// "tokens_per_s", "model"}, and the exit code is 0. With an API judge (`api`), the line also
// holds what it spent ("spent", "stopped_by_spend_limit"); when its spending limit stopped the
// run, the line names the checkpoint instead of the model and the exit code is 3.
int finish_training(const TrainResult& result, const TrainerOptions& options, bool lead,
                    const LlmClient* api = nullptr);

}  // namespace rlaif::cli
