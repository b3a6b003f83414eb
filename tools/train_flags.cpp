#include "tools/train_flags.h"

#include <cstdio>

#include "io/run_directory.h"
#include "runtime/communicator.h"
#include "tools/api_flags.h"
#include "tools/lora_flags.h"

namespace rlaif::cli {

void declare_trainer_flags(Flags& flags, const std::string& default_steps,
                           const std::string& default_lr) {
  flags
      .option("out", "", "output directory: metrics.jsonl, checkpoints/, and the final model", true)
      .option("steps", default_steps, "optimizer steps")
      .option("lr", default_lr, "peak learning rate")
      .option("min-lr", "0", "final learning rate of cosine/linear decay")
      .option("warmup", "0", "linear warmup steps")
      .option("schedule", "cosine", "constant, cosine or linear")
      .option("weight-decay", "0.1", "AdamW decoupled weight decay (matrices and embeddings only)")
      .option("beta1", "0.9", "AdamW beta1")
      .option("beta2", "0.95", "AdamW beta2")
      .option("eps", "1e-8", "AdamW epsilon")
      .option("grad-clip", "1.0", "max global gradient norm (0 = off)")
      .option("grad-accum", "1", "micro-batches per optimizer step")
      .option("seed", "0", "seed of data order and initialisation")
      .option("eval-every", "100", "steps between held-out evaluations (0 = at the end only)")
      .option("save-every", "100",
              "steps between checkpoints (0 = none; SIGINT/SIGTERM still save)")
      .option("keep", "2", "checkpoints to keep (0 = all)")
      .option("resume", "", "checkpoint, or run directory, to continue from bit for bit")
      .flag("overwrite",
            "start afresh in an --out that holds a run or a model: its metrics, checkpoints and "
            "model files are removed first (API answer caches are kept)")
      .option("tensorboard", "",
              "also write the logged metrics as TensorBoard event files in this directory (one "
              "directory per run; `tensorboard --logdir` its parent to compare runs)")
      .option("device", "cpu",
              "cpu or cuda[:N]; under mpirun, a bare cuda is the GPU numbered by the rank's "
              "place on its machine (one GPU per rank)")
      .option("dtype", "f32",
              "parameter dtype: f32, or bf16 (GPU only: bf16 weights and activations, f32 master "
              "weights, optimizer state and losses)")
      .option("zero", "0",
              "ZeRO stage under data parallelism (mpirun): 0 = every rank holds the whole "
              "optimizer state; 1 = AdamW moments and master weights sharded over the ranks "
              "(optimizer memory per rank / ranks; same checkpoints)")
      .flag("no-overlap",
            "under data parallelism, send the gradients after the backward pass instead of "
            "bucket by bucket while it runs (same results; for timing and debugging)")
      .flag("recompute",
            "recompute each layer's norms, q/k/v projections and MLP in the backward pass "
            "instead of storing their activations: less memory, more compute, same gradients");
  declare_lora_flags(flags);
}

Device training_device(const Flags& flags) {
  const std::string text = flags.str("device");
  Device device = parse_device(text);
  if (text == "cuda" && launcher_local_rank() >= 0) device.index = launcher_local_rank();
  return device;
}

DType model_dtype(const Flags& flags) {
  const std::string name = flags.str("dtype");
  if (name == "f32") return DType::f32;
  if (name == "bf16") return DType::bf16;
  throw UsageError("--dtype must be f32 or bf16, got '" + name + "'");
}

void check_run_directory(const std::string& dir, bool resume, bool overwrite) {
  if (overwrite && resume)
    throw UsageError(
        "--overwrite and --resume contradict each other: --resume continues the run "
        "in " +
        dir + ", --overwrite removes it");
  // Rank 0 alone looks and removes: the other ranks, started together, could otherwise see the
  // files rank 0 has just begun to write.
  if (resume || world_communicator().rank() != 0) return;
  const std::vector<std::string> entries = run_entries(dir);
  if (entries.empty()) return;
  if (!overwrite)
    throw UsageError(dir + " already holds a run or a model (" +
                     describe_run_entries(dir, entries) + "): continue it with --resume " + dir +
                     ", start afresh with --overwrite (which removes them first), or choose "
                     "another --out");
  remove_run_entries(dir);
}

std::vector<std::string> trainer_identity_flags() {
  std::vector<std::string> keys = {"lr",           "min-lr",     "warmup", "schedule",
                                   "weight-decay", "beta1",      "beta2",  "eps",
                                   "grad-clip",    "grad-accum", "seed"};
  for (std::string& name : lora_flag_names()) keys.push_back(std::move(name));
  return keys;
}

TrainerOptions trainer_options(const Flags& flags, const std::vector<std::string>& all_flags,
                               const std::vector<std::string>& identity) {
  TrainerOptions o;
  o.out_dir = flags.str("out");
  o.steps = flags.integer("steps");
  o.grad_accum = flags.integer("grad-accum");
  o.schedule.kind = flags.str("schedule");
  o.schedule.lr = flags.number("lr");
  o.schedule.min_lr = flags.number("min-lr");
  o.schedule.warmup = flags.integer("warmup");
  o.adamw.weight_decay = flags.number("weight-decay");
  o.adamw.beta1 = flags.number("beta1");
  o.adamw.beta2 = flags.number("beta2");
  o.adamw.eps = flags.number("eps");
  o.grad_clip = flags.number("grad-clip");
  o.eval_every = flags.integer("eval-every");
  o.save_every = flags.integer("save-every");
  o.keep = flags.integer("keep");
  o.resume = flags.str("resume");
  o.tensorboard_dir = flags.str("tensorboard");
  o.seed = static_cast<uint64_t>(flags.integer("seed"));
  if (o.steps <= 0) throw UsageError("--steps must be positive");
  if (o.grad_accum <= 0) throw UsageError("--grad-accum must be positive");
  o.overlap_reduction = !flags.on("no-overlap");
  o.zero_stage = static_cast<int>(flags.integer("zero"));
  if (o.zero_stage != 0 && o.zero_stage != 1)
    throw UsageError("--zero must be 0 or 1 (ZeRO stages 2 and 3 are not implemented), got " +
                     flags.str("zero"));
  try {
    o.schedule.total_steps = o.steps;
    o.schedule.validate();
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  check_run_directory(o.out_dir, !o.resume.empty(), flags.on("overwrite"));
  for (const std::string& name : all_flags) o.settings.emplace_back(name, flags.str(name));
  o.identity_keys = identity;
  return o;
}

int finish_training(const TrainResult& result, const TrainerOptions& options, bool lead,
                    const LlmClient* api) {
  if (result.interrupted) return 128 + result.signal;
  if (!lead) return 0;
  std::printf("{\"steps\": %lld, \"loss\": %.6f", static_cast<long long>(result.steps_done),
              result.last_loss);
  for (const auto& [name, value] : result.last_eval)
    std::printf(", \"%s\": %.6f", name.c_str(), value);
  std::printf(", \"tokens_per_s\": %.1f", result.tokens_per_second);
  return end_summary_line(api, result.spend_limit_stop, result.checkpoint, options.out_dir);
}

}  // namespace rlaif::cli
