// `rlaif bench`: the list of benchmarks, and `rlaif bench train`, the throughput of full training
// steps (forward, backward, gradient clipping, AdamW) of a randomly initialised preset model on
// random tokens, with MFU as llm.c computes it, and the measured split of its tensor memory
// (weights, gradients, optimizer state, activations); with --lora-r, the same for LoRA
// fine-tuning of the same model, side by side.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "algorithms/adamw.h"
#include "algorithms/grad_clip.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "kernels/profiling_backend.h"
#include "model/lora.h"
#include "model/transformer.h"
#include "runtime/error.h"
#include "tools/bench_common.h"
#include "tools/bench_presets.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"

namespace rlaif::cli {
namespace {

// What bench train times: the model, the batch and the steps, shared by both configurations.
struct TrainSetup {
  ModelConfig config;
  int64_t B = 0, T = 0, steps = 0, warmup = 0;
  BenchDevice dev;
  DType dtype = DType::f32;
  uint64_t seed = 0;
  bool recompute = false, profile = false;
  int profile_top = 0;
};

// What one configuration's run measured. Bytes are of tensors: weights (every parameter, base
// and adapters), gradients (those held after a backward pass, over the trainable parameters),
// optimizer state (AdamW's moments and master copies), and activations: what the forward pass
// leaves live for the backward pass (the bytes in use after the loss less those before the
// forward pass). The peak also holds the backward pass's workspace and gradients as they appear.
struct TrainRun {
  int64_t trainable_params = 0;
  double weights_bytes = 0, grad_bytes = 0, optimizer_bytes = 0, activation_bytes = 0;
  double peak_bytes = 0;
  std::vector<double> seconds;  // wall seconds of each timed step
  double step_s = 0, tokens_per_s = 0, loss = 0;
  // --profile: the primitives' table, its rows for the JSON, and the profiled steps' times.
  bool profiled = false;
  std::string profile_table;
  std::vector<JsonObject> profile_json;
  double profile_wall_s = 0, profile_inside_s = 0;
};

constexpr int kProfileSteps = 2;

template <typename Params>
double sum_bytes(const Params& params) {
  double bytes = 0;
  for (const auto& [name, v] : params) bytes += static_cast<double>(v.data().nbytes());
  return bytes;
}

// Builds a fresh model (with LoRA adapters and a frozen base when `lora` is given), times its
// training steps and measures its memory; the model is released on return. The peak is counted
// from the bytes live at the call.
TrainRun run_training(const TrainSetup& s, const LoraConfig* lora) {
  reset_peak_memory(s.dev.device);
  TrainRun run;
  Transformer model(s.config, s.dev.device, s.dtype);
  model.init_weights(s.seed);
  model.set_requires_grad(true);
  model.set_recompute(s.recompute);
  if (lora) {
    model.add_lora(*lora, s.seed);
    model.freeze_base();
  }
  const auto params = lora ? model.adapter_parameters() : model.parameters();
  for (const auto& [name, v] : params) run.trainable_params += v.numel();
  AdamW optimizer(params);
  Backend& backend = backend_for(s.dev.device);

  const int64_t B = s.B, T = s.T;
  std::vector<int32_t> pos(static_cast<size_t>(B * T));
  for (int64_t i = 0; i < B * T; ++i) pos[static_cast<size_t>(i)] = static_cast<int32_t>(i % T);
  const Tensor positions = Tensor::from_vector(pos, {B, T}).to(s.dev.device);
  std::mt19937_64 rng(s.seed);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(s.config.vocab_size - 1));
  std::vector<int32_t> ids(static_cast<size_t>(B * T)), targets(ids.size());

  // One training step on fresh random tokens; returns its wall seconds. The first one also
  // measures the gradients that backward leaves on the trainable parameters.
  bool measure_grads = true;
  auto train_step = [&] {
    for (auto& v : ids) v = token(rng);
    for (auto& v : targets) v = token(rng);
    backend.synchronize();
    auto t0 = std::chrono::steady_clock::now();
    // Uploading the batch is part of a real step, so it is inside the timed region.
    TransformerInput input{Tensor::from_vector(ids, {B, T}).to(s.dev.device), positions, Tensor()};
    Tensor y = Tensor::from_vector(targets, {B, T}).to(s.dev.device);
    const size_t before_forward = measure_grads ? memory_in_use_bytes(s.dev.device) : 0;
    Variable l = mean_all(model.token_losses(input, y));
    if (measure_grads) {
      run.activation_bytes =
          static_cast<double>(memory_in_use_bytes(s.dev.device) - before_forward);
    }
    l.backward();
    if (measure_grads) {
      for (const auto& [name, v] : params) {
        if (v.grad().defined()) run.grad_bytes += static_cast<double>(v.grad().nbytes());
      }
      measure_grads = false;
    }
    // Clipping as the trainer does it: the factor is applied as AdamW reads each gradient.
    optimizer.step(1e-4, static_cast<float>(clip_factor(global_grad_norm(params), 1.0)));
    optimizer.zero_grad();
    run.loss = l.data().item();
    backend.synchronize();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  for (int64_t step = 0; step < s.warmup + s.steps; ++step) {
    const double seconds = train_step();
    if (step >= s.warmup) run.seconds.push_back(seconds);
  }
  run.step_s = median(run.seconds);
  run.tokens_per_s = static_cast<double>(B * T) / run.step_s;

  // The peak is read first: optimizer.state() makes host copies, which on the CPU would count
  // towards it.
  run.peak_bytes = static_cast<double>(peak_memory_bytes(s.dev.device));
  run.weights_bytes = sum_bytes(model.parameters()) + sum_bytes(model.adapter_parameters());
  for (const auto& [name, t] : optimizer.state()) {
    run.optimizer_bytes += static_cast<double>(t.nbytes());
  }
  // Profiled steps come after the timed ones and the memory figures (and keep the final loss),
  // so they change none of them. Every primitive called through backend_for is timed on the
  // device (kernels/profiling_backend.h); the rest of each step's wall time is device time
  // outside any primitive: idle while the host (autograd, allocation, launches) falls behind,
  // or uploads.
  if (s.profile) {
    run.profiled = true;
    ProfilingBackend* prof = enable_profiling(s.dev.device);
    prof->reset();
    const double final_loss = run.loss;
    for (int i = 0; i < kProfileSteps; ++i) run.profile_wall_s += train_step();
    disable_profiling(s.dev.device);
    run.loss = final_loss;
    run.profile_inside_s = prof->total_seconds();
    std::ostringstream table;
    prof->report(table, s.profile_top, run.profile_wall_s);
    run.profile_table = table.str();
    for (const ProfileEntry& e : prof->entries()) {
      JsonObject row;
      row.str("name", e.name)
          .integer("calls", e.calls)
          .num("total_ms", e.seconds * 1e3)
          .num("pct", run.profile_wall_s > 0 ? 100.0 * e.seconds / run.profile_wall_s : NAN);
      if (e.flops > 0) row.num("tflops", e.flops / e.seconds / 1e12);
      if (e.bytes > 0) row.num("gb_s", e.bytes / e.seconds / 1e9);
      run.profile_json.push_back(row);
    }
  }
  return run;
}

// The profile of one run: its times per step and the table of primitives. `label` names the
// configuration when there are two.
void print_profile(const TrainRun& run, const std::string& label) {
  const std::string which = label.empty() ? "" : " (" + label + ")";
  std::printf(
      "\nprofile%s: %d steps, %.2f ms/step with every primitive timed (%.2f untimed), %.2f "
      "ms/step inside primitives, %.2f ms/step outside them\n",
      which.c_str(), kProfileSteps, run.profile_wall_s * 1e3 / kProfileSteps, run.step_s * 1e3,
      run.profile_inside_s * 1e3 / kProfileSteps,
      (run.profile_wall_s - run.profile_inside_s) * 1e3 / kProfileSteps);
  std::fputs(run.profile_table.c_str(), stdout);
}

// The memory split of a run (and its profile, when taken) as JSON fields.
void add_run_json(JsonObject& json, const TrainRun& run) {
  json.integer("trainable_params", run.trainable_params)
      .integer("weights_bytes", static_cast<long long>(run.weights_bytes))
      .integer("grad_bytes", static_cast<long long>(run.grad_bytes))
      .integer("optimizer_bytes", static_cast<long long>(run.optimizer_bytes))
      .integer("activation_bytes", static_cast<long long>(run.activation_bytes));
  if (run.profiled) {
    // Totals over the profiled steps; pct is of their wall time, so the entries and
    // outside_primitives_ms add up to 100%.
    json.integer("profile_steps", kProfileSteps)
        .num("profile_wall_ms", run.profile_wall_s * 1e3)
        .num("outside_primitives_ms", (run.profile_wall_s - run.profile_inside_s) * 1e3)
        .array("profile", run.profile_json);
  }
}

// l / f as a percentage, "n/a" when f is not positive.
std::string ratio_text(double l, double f) {
  if (!(f > 0) || !std::isfinite(l)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g%%", 100.0 * l / f);
  return buf;
}

// The LoRA configuration of --lora-r, --lora-alpha, --lora-targets and --lora-rslora; none
// without --lora-r. Targets are checked against the family's module names here, before the
// full fine-tune runs (add_lora checks dotted paths completely).
std::optional<LoraConfig> bench_lora_config(const Flags& flags, const ModelConfig& config) {
  const int64_t r = flags.integer("lora-r");
  if (r < 0) throw UsageError("--lora-r must not be negative");
  if (r == 0) {
    for (const char* name : {"lora-alpha", "lora-targets", "lora-rslora"}) {
      if (flags.given(name)) throw UsageError(std::string("--") + name + " needs --lora-r");
    }
    return std::nullopt;
  }
  LoraConfig lc;
  lc.r = r;
  lc.alpha = flags.str("lora-alpha").empty() ? static_cast<double>(r) : flags.number("lora-alpha");
  lc.use_rslora = flags.on("lora-rslora");
  lc.targets = split_list(flags.str("lora-targets"));
  const std::vector<std::string> names = lora_module_names(config);
  for (const std::string& t : lc.targets) {
    if (t == "all-linear" && lc.targets.size() == 1) continue;
    const std::string last = t.substr(t.rfind('.') == std::string::npos ? 0 : t.rfind('.') + 1);
    if (std::find(names.begin(), names.end(), last) == names.end()) {
      std::string list;
      for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
      throw UsageError("--lora-targets: '" + t + "' names no " + config.model_type +
                       " module rlaif adapts (" + list + ", or all-linear alone)");
    }
  }
  try {
    lc.validate("--lora-*");
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  return lc;
}

}  // namespace

int bench_main(const std::vector<std::string>& args) {
  const char* text =
      "usage: rlaif bench BENCHMARK [flags]\n\n"
      "benchmarks:\n"
      "  train      tokens/s, ms per step, peak memory and MFU of training a preset model\n"
      "  dpo        DPO steps/s, peak memory and MFU, the reference live and precomputed\n"
      "  kernels    time and rate of each backend primitive against the device's ceilings\n"
      "  attention  causal attention over head dims, sequence lengths and grouped-query heads\n"
      "  generate   tokens/s of batched generation with the KV cache\n"
      "  tokenizer  MB/s of encoding text, on one thread and on all\n"
      "  serve      requests/s, tokens/s and latency of `rlaif serve` under load; --soak\n\n"
      "`rlaif bench BENCHMARK --help` documents its flags.\n";
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::fputs(text, stdout);
    return 0;
  }
  if (args.empty()) {
    std::fputs(text, stderr);
    return 2;
  }
  throw UsageError("unknown benchmark '" + args[0] +
                   "': choose train, dpo, kernels, attention, generate, tokenizer or serve");
}

int bench_train_main(const std::vector<std::string>& args) {
  Flags flags("bench train",
              "Time training steps (forward, backward, gradient clipping at 1.0, AdamW) of a\n"
              "randomly initialised preset model on random tokens. Prints tokens/s, the median\n"
              "ms per step, peak tensor memory and MFU: achieved FLOP/s over the GPU's dense\n"
              "bf16 peak, with llm.c's 6*params + 6*layers*d_model*seq FLOPs per token (n/a on\n"
              "CPU and on GPUs missing from the table). Memory is split as measured: the bytes\n"
              "of the weights, of the gradients held after backward, of the optimizer's state\n"
              "(AdamW's moments and master copies), and of the activations the forward pass\n"
              "keeps for the backward pass. --lora-r R times a second configuration after the full "
              "fine-tune,\n"
              "on a fresh model with the same shape and batch: LoRA adapters of rank R on the\n"
              "--lora-targets projections, the base weights frozen, AdamW and clipping over the\n"
              "adapters only; a table then compares the two. --profile then runs 2 more steps\n"
              "of each configuration with every primitive timed on the device (CUDA events\n"
              "around the work it queues; the host clock on the CPU), and prints the time by\n"
              "primitive and shape, and the time outside primitives (on a GPU: the device idle,\n"
              "waiting for the host). Presets:" +
                  bench_preset_help());
  flags.option("arch", "llama", "gpt2 or llama")
      .option("preset", "tiny", "tiny, 124M, 350M or 1B")
      .option("like", "",
              "a Hugging Face config.json whose model to time instead of a preset (e.g. a real "
              "checkpoint's, to rehearse before using its weights)")
      .option("batch", "8", "sequences per step (B)")
      .option("seq", "0", "tokens per sequence (T; 0 = the preset's context)")
      .option("steps", "10", "timed steps")
      .option("warmup", "2", "untimed steps before them")
      .option("device", "cpu", "cpu or cuda[:N]")
      .option("dtype", "f32", "parameter and activation dtype: f32, or bf16 (cuda only)")
      .option("seed", "0", "seed of the weights, the adapters and the tokens")
      .option("json", "", "also write the figures to this JSON file")
      .flag("recompute",
            "recompute norms, q/k/v projections and MLPs in the backward pass (less memory; "
            "MFU still counts model FLOPs only)")
      .option("lora-r", "0",
              "LoRA rank: also time LoRA fine-tuning after the full fine-tune (0 = full only)")
      .option("lora-alpha", "", "LoRA's alpha (scale alpha/r; default: r, a scale of 1)")
      .option("lora-targets", "all-linear",
              "comma-separated modules to adapt, as PEFT names them (q_proj, v_proj, ...; "
              "GPT-2: c_attn, c_proj, c_fc), or all-linear")
      .flag("lora-rslora", "rank-stabilised LoRA: scale alpha/sqrt(r)")
      .flag("profile", "then run 2 more steps timing every primitive, and print where time goes")
      .option("profile-top", "30", "rows of the --profile table (0 = all)");
  if (!flags.parse(args)) return 0;

  const bool like = flags.given("like");
  if (like && (flags.given("arch") || flags.given("preset"))) {
    throw UsageError("--like replaces --arch and --preset: give one or the other");
  }
  TrainSetup s;
  s.config = like ? ModelConfig::load(flags.str("like"))
                  : bench_preset(flags.str("arch"), flags.str("preset"));
  s.config.num_labels = 0;  // the language model is what is timed
  s.B = flags.integer("batch");
  s.steps = flags.integer("steps");
  s.warmup = flags.integer("warmup");
  s.T = flags.integer("seq") > 0 ? flags.integer("seq") : s.config.max_position_embeddings;
  if (s.B <= 0) throw UsageError("--batch must be positive");
  if (flags.integer("seq") < 0 || s.T > s.config.max_position_embeddings) {
    throw UsageError("--seq must be in [1, " + std::to_string(s.config.max_position_embeddings) +
                     "], the model's context (0 = all of it)");
  }
  if (s.steps <= 0) throw UsageError("--steps must be positive");
  if (s.warmup < 0) throw UsageError("--warmup must not be negative");
  if (flags.integer("profile-top") < 0) throw UsageError("--profile-top must not be negative");
  s.profile = flags.on("profile");
  s.profile_top = static_cast<int>(flags.integer("profile-top"));
  s.recompute = flags.on("recompute");
  const std::optional<LoraConfig> lora = bench_lora_config(flags, s.config);
  s.dev = bench_device(flags.str("device"));
  s.dtype = bench_dtype(flags.str("dtype"), s.dev);
  s.seed = static_cast<uint64_t>(flags.integer("seed"));

  const std::string name = like ? flags.str("like") + " (" + s.config.model_type + ")"
                                : flags.str("arch") + " " + flags.str("preset");
  std::fprintf(stderr, "bench train: %s, %lld parameters, on %s\n", name.c_str(),
               static_cast<long long>(s.config.parameter_count()), s.dev.name.c_str());
  const TrainRun full = run_training(s, nullptr);
  TrainRun adapted;
  if (lora) {
    std::fprintf(stderr, "bench train: LoRA r=%lld on %s\n", static_cast<long long>(lora->r),
                 flags.str("lora-targets").c_str());
    adapted = run_training(s, &*lora);
  }

  const double flops_per_token = train_flops_per_token(s.config, s.T);
  const double achieved = flops_per_token * full.tokens_per_s;
  const double mfu = s.dev.peak_bf16_flops > 0 ? achieved / s.dev.peak_bf16_flops : NAN;
  const auto [min_s, max_s] = std::minmax_element(full.seconds.begin(), full.seconds.end());

  std::printf(
      "bench train: %s (%.2fM parameters), %s, %s, batch %lld x seq %lld, %lld steps "
      "after %lld warm-up\n",
      name.c_str(), static_cast<double>(s.config.parameter_count()) / 1e6, s.dev.name.c_str(),
      dtype_name(s.dtype), static_cast<long long>(s.B), static_cast<long long>(s.T),
      static_cast<long long>(s.steps), static_cast<long long>(s.warmup));
  if (lora) {
    std::printf("LoRA: r %lld, alpha %g%s, targets %s; activation recompute %s\n",
                static_cast<long long>(lora->r), lora->alpha, lora->use_rslora ? " (rsLoRA)" : "",
                flags.str("lora-targets").c_str(), s.recompute ? "on" : "off");
    Table table({"metric", "full", "LoRA r=" + std::to_string(lora->r), "LoRA/full"});
    auto row = [&](const std::string& metric, double f, double l, const std::string& fs,
                   const std::string& ls, bool ratio = true) {
      table.add({metric, fs, ls, ratio ? ratio_text(l, f) : ""});
    };
    row("trainable parameters", static_cast<double>(full.trainable_params),
        static_cast<double>(adapted.trainable_params), std::to_string(full.trainable_params),
        std::to_string(adapted.trainable_params));
    for (const auto& [metric, f, l] : std::vector<std::tuple<std::string, double, double>>{
             {"weights", full.weights_bytes, adapted.weights_bytes},
             {"gradients", full.grad_bytes, adapted.grad_bytes},
             {"optimizer state", full.optimizer_bytes, adapted.optimizer_bytes},
             {"activations", full.activation_bytes, adapted.activation_bytes},
             {"peak tensor memory", full.peak_bytes, adapted.peak_bytes}}) {
      row(metric, f, l, human_bytes(f), human_bytes(l));
    }
    row("ms/step (median)", full.step_s, adapted.step_s, fixed(full.step_s * 1e3, 2),
        fixed(adapted.step_s * 1e3, 2));
    row("tokens/s", full.tokens_per_s, adapted.tokens_per_s, fixed(full.tokens_per_s, 0),
        fixed(adapted.tokens_per_s, 0));
    row("final loss", full.loss, adapted.loss, fixed(full.loss, 4), fixed(adapted.loss, 4), false);
    table.print();
  } else {
    Table table({"metric", "value"});
    table.add({"tokens/s", fixed(full.tokens_per_s, 0)});
    table.add({"ms/step (median)", fixed(full.step_s * 1e3, 2)});
    table.add({"ms/step (min..max)", fixed(*min_s * 1e3, 2) + " .. " + fixed(*max_s * 1e3, 2)});
    table.add({"trainable parameters", std::to_string(full.trainable_params)});
    table.add({"weights", human_bytes(full.weights_bytes)});
    table.add({"gradients", human_bytes(full.grad_bytes)});
    table.add({"optimizer state", human_bytes(full.optimizer_bytes)});
    table.add({"activations", human_bytes(full.activation_bytes)});
    table.add({"peak tensor memory", human_bytes(full.peak_bytes)});
    table.add({"activation recompute", s.recompute ? "on" : "off"});
    table.add({"achieved TFLOP/s", fixed(achieved / 1e12, 3)});
    table.add({"peak bf16 TFLOP/s", s.dev.peak_bf16_flops > 0
                                        ? fixed(s.dev.peak_bf16_flops / 1e12, 0)
                                        : "n/a (not in the table)"});
    table.add({"MFU", std::isfinite(mfu) ? fixed(100.0 * mfu, 1) + "%" : "n/a"});
    table.add({"final loss", fixed(full.loss, 4)});
    table.print();
  }
  if (s.profile) {
    print_profile(full, lora ? "full fine-tune" : "");
    if (lora) print_profile(adapted, "LoRA r=" + std::to_string(lora->r));
  }

  if (!flags.str("json").empty()) {
    JsonObject json;
    json.str("bench", "train")
        .str("arch", like ? s.config.model_type : flags.str("arch"))
        .str("preset", like ? "" : flags.str("preset"))
        .str("like", like ? flags.str("like") : "")
        .str("device", s.dev.device.str())
        .str("device_name", s.dev.name)
        .str("dtype", dtype_name(s.dtype))
        .integer("recompute", s.recompute ? 1 : 0)
        .integer("params", s.config.parameter_count())
        .integer("batch", s.B)
        .integer("seq", s.T)
        .integer("steps", s.steps)
        .integer("warmup", s.warmup)
        .num("tokens_per_s", full.tokens_per_s)
        .num("ms_per_step", full.step_s * 1e3)
        .integer("peak_memory_bytes", static_cast<long long>(full.peak_bytes))
        .num("flops_per_token", flops_per_token)
        .num("achieved_tflops", achieved / 1e12)
        .num("peak_tflops", s.dev.peak_bf16_flops > 0 ? s.dev.peak_bf16_flops / 1e12 : NAN)
        .num("mfu", mfu)
        .num("loss", full.loss);
    add_run_json(json, full);
    if (lora) {
      JsonObject l;
      l.integer("lora_r", lora->r)
          .num("lora_alpha", lora->alpha)
          .str("lora_targets", flags.str("lora-targets"))
          .integer("lora_rslora", lora->use_rslora ? 1 : 0)
          .num("tokens_per_s", adapted.tokens_per_s)
          .num("ms_per_step", adapted.step_s * 1e3)
          .integer("peak_memory_bytes", static_cast<long long>(adapted.peak_bytes))
          .num("loss", adapted.loss);
      add_run_json(l, adapted);
      json.object("lora", l);
    }
    write_json_file(flags.str("json"), json);
  }
  return 0;
}

}  // namespace rlaif::cli
