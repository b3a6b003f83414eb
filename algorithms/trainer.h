// The training loop every algorithm shares: micro-batches with gradient accumulation, global-norm
// clipping, AdamW with a learning-rate schedule, held-out evaluation, per-step metrics, a progress
// bar, atomic checkpoints, clean exits on SIGINT/SIGTERM and bit-for-bit resumption.
//
// An algorithm (pretraining, SFT, reward modelling, DPO, ...) plugs in as a TrainingTask: it
// computes one micro-batch's loss and back-propagates it; the loop does the rest. Everything a
// task draws at random must be a pure function of (seed, step, micro-batch), so that resuming at
// a step reproduces the uninterrupted run exactly: the checkpoint holds the step, the weights and
// the optimizer state, and nothing else is needed.
//
// Gradient accumulation: the loss of each of A micro-batches is back-propagated scaled by 1/A,
// so the accumulated gradient is the mean over micro-batches, the gradient of the large batch
// when micro-batches weigh equally.
//
// Data parallelism (TrainerOptions::comm with size() > 1, e.g. under `mpirun -np R`): every rank
// runs this same loop; the task computes its loss on the rank's own shard of each batch, as a mean
// over the shard, with shards of equal weight (equal rows and tokens). After the micro-batches,
// every gradient is averaged over ranks (all_reduce_mean) before clipping and AdamW, so each rank
// applies the identical update and the weights stay bitwise identical everywhere; the logged loss
// and metrics are the rank mean, which is then the mean over the global batch. Only rank 0
// evaluates (the weights are the same everywhere), logs, draws progress and writes checkpoints and
// the model. The gradient averaging, clipping and AdamW are DataParallelOptimizer's
// (algorithms/data_parallel_optimizer.h): bucketed all-reduce, or with zero_stage = 1 (--zero 1)
// AdamW's state sharded over the ranks (ZeRO-1). Later work: overlapping the buckets' collectives
// with the backward pass.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/adamw.h"
#include "algorithms/lr_schedule.h"
#include "model/transformer.h"

namespace rlaif {

struct TrainerCheckpoint;  // io/checkpoint.h
class Communicator;        // runtime/communicator.h

struct MicroBatchResult {
  double loss = 0.0;   // this micro-batch's (unscaled) loss
  int64_t tokens = 0;  // tokens processed (for tokens/s)
  // Extra metrics, averaged over the step's micro-batches in the log (e.g. accuracy).
  std::vector<std::pair<std::string, double>> metrics;
};

class TrainingTask {
 public:
  virtual ~TrainingTask() = default;
  // Forward and backward of micro-batch `micro` (0 ≤ micro < A) of optimizer step `step`
  // (0-based): back-propagate loss·scale (scale = 1/A) and return the unscaled loss.
  virtual MicroBatchResult micro_batch(int64_t step, int64_t micro, double scale) = 0;
  // Held-out metrics, the first being the main one (e.g. {"val_loss", x}); empty when there is
  // no held-out data.
  virtual std::vector<std::pair<std::string, double>> evaluate() { return {}; }
};

struct TrainerOptions {
  std::string out_dir;     // metrics.jsonl, checkpoints/ and, at the end, the model itself
  int64_t steps = 100;     // optimizer steps in total (a resumed run continues to this count)
  int64_t grad_accum = 1;  // micro-batches per step
  LrSchedule schedule;     // total_steps is set from `steps`
  AdamWOptions adamw;
  double grad_clip = 1.0;       // max global gradient norm; 0 = no clipping
  int64_t eval_every = 0;       // steps between evaluations (0 = only at the end)
  int64_t save_every = 0;       // steps between checkpoints (0 = only on a signal)
  int64_t keep = 2;             // checkpoints kept (0 = all)
  std::string resume;           // checkpoint or run directory to continue from ("" = fresh)
  std::string tensorboard_dir;  // also log the metrics as TensorBoard events here ("" = no)
  // Where the tokenizer files copied into checkpoints and the final model directory come from: a
  // model directory or a tokenizer file (see save_model in io/model_dir.h); empty copies none.
  std::string tokenizer_source;
  // The base model a run that trains LoRA adapters started from, recorded in its adapter
  // directories as base_model_name_or_path (io/peft_adapter.h).
  std::string base_model;
  // The run's seed. The loop itself draws one thing from it: the LoRA dropout masks of each
  // micro-batch (micro_batch_seed), so that a resumed step repeats them.
  uint64_t seed = 0;
  // The settings that define the run ({flag: value}); stored in every checkpoint, and a resume
  // whose settings differ in any of `identity_keys` is refused, naming each difference.
  std::vector<std::pair<std::string, std::string>> settings;
  std::vector<std::string> identity_keys;
  std::string label = "train";  // progress-bar label
  // The data-parallel ranks this run is one of (see above); nullptr: this process alone. A task
  // given a communicator must shard its batches over its ranks. Without one, train() refuses to
  // run under an MPI launcher with several ranks: each would train the full batch alone.
  Communicator* comm = nullptr;
  // The same ranks' communicator for the model's device, which averages gradients and gathers
  // optimizer shards (kernels/device_communicator.h: NCCL for a GPU model); nullptr: `comm`. The
  // loop's own numbers (losses, metrics, signals) are host values and go through `comm`.
  Communicator* device_comm = nullptr;
  // 0: every rank holds the whole optimizer state; 1: ZeRO-1, AdamW's moments and master weights
  // sharded over the ranks. Checkpoints are the same either way, so a run may resume with the
  // other stage or another rank count.
  int zero_stage = 0;
  // Under data parallelism, send each bucket of gradients while the last micro-batch's backward
  // pass still runs (DataParallelOptimizer::overlap_backward); false: after it (same results).
  bool overlap_reduction = true;
};

// What every training loop (train() below, and ppo()) derives from its TrainerOptions before the
// first step: the options checked (Error naming the flag), the learning-rate schedule over the
// run, and the communicators: `comm` (a single process when options.comm is null; Error when a
// launcher started several ranks but no communicator was given) and `device_comm` (options'
// device_comm, else comm; Error when it is not over the same ranks).
struct TrainingSetup {
  LrSchedule schedule;
  Communicator* comm;
  Communicator* device_comm;
  bool lead;  // rank 0: the rank that evaluates, logs and writes files
};
TrainingSetup training_setup(const TrainerOptions& options);

struct TrainResult {
  int64_t steps_done = 0;
  bool interrupted = false;  // stopped by SIGINT/SIGTERM after saving a checkpoint
  int signal = 0;            // which signal
  // Stopped, after saving a checkpoint, because an API's spending limit (io/spend_meter.h) left
  // a step without the answers it needed; why, naming the limit.
  std::string spend_limit_stop;
  double last_loss = 0.0;
  std::vector<std::pair<std::string, double>> last_eval;
  double tokens_per_second = 0.0;
  std::string checkpoint;  // the last checkpoint written ("" if none)
};

// Trains `model`'s trainable parameters (those with requires_grad: its weights, or, on a model
// with LoRA adapters and a frozen base, the adapters and the modules they save) with `task`. With
// options.resume, the trained weights and the optimizer state are first restored from the
// checkpoint. At the end (not when interrupted) the model is saved to options.out_dir: the whole
// model, or the adapters only (a PEFT adapter directory, io/peft_adapter.h), as are checkpoints.
// A non-finite loss or gradient norm stops training with an Error naming the step and the last
// good checkpoint, which is left in place. A task that throws SpendLimitReached in a step (an
// API judge at its spending limit) stops the run on one rank cleanly: the step is dropped, a
// checkpoint of the steps done is saved, and a resumed run redoes the step (its answers so far
// come from the request cache). On several ranks the exception propagates.
TrainResult train(Transformer& model, TrainingTask& task, const TrainerOptions& options);

// ---- Pieces of train() for loops that cannot be one TrainingTask ------------------------------
// PPO updates a policy and a value model several times per rollout; its loop (algorithms/ppo.h)
// reuses these so that checkpoints and resumption behave exactly as train()'s. Clean stops on
// SIGINT/SIGTERM: algorithms/stop_signals.h.

// trainer_state/state.json of a checkpoint at `step`: {"format": 1, "step": step, ...extra,
// "settings": {options.settings}}. `extra` carries a loop's own state (numbers, written so that
// they read back to the same double).
std::string trainer_state_json(int64_t step, const TrainerOptions& options,
                               const std::vector<std::pair<std::string, double>>& extra = {});
// Refuses (Error) a resume whose settings differ from the checkpoint's in any of
// options.identity_keys, naming every difference.
void check_resume_settings(const TrainerCheckpoint& checkpoint, const TrainerOptions& options);
// state.json also records OpenBLAS's kernel set ("cpu_kernels"). A CPU run resumed under another
// set continues correctly but not bit for bit (docs/DESIGN.md, Determinism): this returns the
// line that says so, or "" when the sets agree, the model is not on the CPU, or the checkpoint
// predates the record.
std::string resume_kernels_note(const TrainerCheckpoint& checkpoint, Device device);
// Copies the weights of the model saved in a checkpoint directory into `model`; Error when its
// config differs. A model with adapters takes the checkpoint's adapters instead (its base stays
// as loaded); Error when the checkpoint holds a whole model, or adapters shaped otherwise.
void load_checkpoint_weights(Transformer& model, const std::string& checkpoint);
// The trainable parameters: those of parameters() and adapter_parameters() with requires_grad,
// in that order.
std::vector<std::pair<std::string, Variable>> trainable_parameters(const Transformer& model);
// The seed of the random draws inside one micro-batch (LoRA dropout masks): a hash of the run's
// seed, the step, the micro-batch and the data-parallel rank (whose rows differ).
uint64_t micro_batch_seed(uint64_t seed, int64_t step, int64_t micro, int rank);

}  // namespace rlaif
