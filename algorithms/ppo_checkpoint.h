// PPO's training checkpoints: a model directory of the policy plus trainer_state/ holding the
// optimizer state (one optimizer over the policy's and the value model's parameters, stored in
// the layout of a policy optimizer beside a value optimizer), the value model's weights under
// "value_model.", and state.json with the KL coefficient β and the optimizer step count, so that
// a resumed run continues bit for bit.
//
// Names: the optimizer's state "KIND.value_model.NAME" is written as
// "value_optimizer.KIND.NAME" and read back; e.g. "m.value_model.score.weight" is stored as
// "value_optimizer.m.score.weight".
#pragma once

#include <cstdint>
#include <string>

#include "algorithms/data_parallel_optimizer.h"
#include "algorithms/ppo.h"
#include "io/safetensors.h"

namespace rlaif {

// The prefix of the value model's parameters in the shared optimizer and in checkpoints.
inline constexpr const char* kPpoValueModelPrefix = "value_model.";

// The tensors of a checkpoint: the optimizer state, and the value model's weights when
// `use_value`. Collective (the optimizer's state may be sharded); only the writer (`wanted`) gets
// the tensors.
NamedTensors ppo_checkpoint_tensors(const PpoModels& models, const DataParallelOptimizer& optimizer,
                                    bool use_value, bool wanted);

// Restores weights, optimizer state and β (`kl_coef`) from the checkpoint trainer.resume names;
// returns its step and sets `checkpoint` to its directory. Every rank reads the checkpoint.
int64_t restore_ppo_checkpoint(const PpoModels& models, DataParallelOptimizer& optimizer,
                               bool use_value, const TrainerOptions& trainer, double& kl_coef,
                               std::string& checkpoint);

}  // namespace rlaif
