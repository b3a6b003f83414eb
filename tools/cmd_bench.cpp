// `rlaif bench`: the list of benchmarks, and `rlaif bench train`, the throughput of full training
// steps (forward, backward, gradient clipping, AdamW) of a randomly initialised preset model on
// random tokens, with MFU as llm.c computes it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>

#include "algorithms/adamw.h"
#include "algorithms/grad_clip.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "kernels/profiling_backend.h"
#include "model/transformer.h"
#include "tools/bench_common.h"
#include "tools/bench_presets.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"

namespace rlaif::cli {
namespace {

// Training FLOPs per token, llm.c's estimate (after the PaLM paper's appendix B): 6 per
// parameter (2 forward, 4 backward) for the matmuls, plus 6·L·C·T for the attention scores and
// their weighted sums, with N the total parameter count (the tied head counted once).
double train_flops_per_token(const ModelConfig& c, int64_t seq) {
  const double n = static_cast<double>(c.parameter_count());
  return 6.0 * n + 6.0 * static_cast<double>(c.num_layers) * static_cast<double>(c.hidden_size) *
                       static_cast<double>(seq);
}

DType bench_dtype(const std::string& text, const BenchDevice& d) {
  if (text == "f32") return DType::f32;
  if (text != "bf16") throw UsageError("--dtype must be f32 or bf16, not '" + text + "'");
  if (d.device.is_cpu()) {
    throw UsageError("--dtype bf16 needs --device cuda: the CPU backend computes in f32 only");
  }
  return DType::bf16;
}

}  // namespace

int bench_main(const std::vector<std::string>& args) {
  const char* text =
      "usage: rlaif bench BENCHMARK [flags]\n\n"
      "benchmarks:\n"
      "  train      tokens/s, ms per step, peak memory and MFU of training a preset model\n"
      "  kernels    time and rate of each backend primitive against the device's ceilings\n"
      "  generate   tokens/s of batched generation with the KV cache\n"
      "  tokenizer  MB/s of encoding text, on one thread and on all\n\n"
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
                   "': choose train, kernels, generate or tokenizer");
}

int bench_train_main(const std::vector<std::string>& args) {
  Flags flags("bench train",
              "Time training steps (forward, backward, gradient clipping at 1.0, AdamW) of a\n"
              "randomly initialised preset model on random tokens. Prints tokens/s, the median\n"
              "ms per step, peak tensor memory and MFU: achieved FLOP/s over the GPU's dense\n"
              "bf16 peak, with llm.c's 6*params + 6*layers*d_model*seq FLOPs per token (n/a on\n"
              "CPU and on GPUs missing from the table). --profile then runs 2 more steps with\n"
              "every primitive timed on the device (CUDA events around the work it queues; the\n"
              "host clock on the CPU), and prints the time by primitive and shape, and the time\n"
              "outside primitives (on a GPU: the device idle, waiting for the host). Presets:" +
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
      .option("seed", "0", "seed of the weights and the tokens")
      .option("json", "", "also write the figures to this JSON file")
      .flag("recompute",
            "recompute norms, q/k/v projections and MLPs in the backward pass (less memory; "
            "MFU still counts model FLOPs only)")
      .flag("profile", "then run 2 more steps timing every primitive, and print where time goes")
      .option("profile-top", "30", "rows of the --profile table (0 = all)");
  if (!flags.parse(args)) return 0;

  const bool like = flags.given("like");
  if (like && (flags.given("arch") || flags.given("preset"))) {
    throw UsageError("--like replaces --arch and --preset: give one or the other");
  }
  ModelConfig config = like ? ModelConfig::load(flags.str("like"))
                            : bench_preset(flags.str("arch"), flags.str("preset"));
  config.num_labels = 0;  // the language model is what is timed
  const int64_t B = flags.integer("batch"), steps = flags.integer("steps");
  const int64_t warmup = flags.integer("warmup");
  const int64_t T =
      flags.integer("seq") > 0 ? flags.integer("seq") : config.max_position_embeddings;
  if (B <= 0) throw UsageError("--batch must be positive");
  if (flags.integer("seq") < 0 || T > config.max_position_embeddings) {
    throw UsageError("--seq must be in [1, " + std::to_string(config.max_position_embeddings) +
                     "], the model's context (0 = all of it)");
  }
  if (steps <= 0) throw UsageError("--steps must be positive");
  if (warmup < 0) throw UsageError("--warmup must not be negative");
  if (flags.integer("profile-top") < 0) throw UsageError("--profile-top must not be negative");
  BenchDevice dev = bench_device(flags.str("device"));
  const DType dtype = bench_dtype(flags.str("dtype"), dev);
  const uint64_t seed = static_cast<uint64_t>(flags.integer("seed"));

  const std::string name = like ? flags.str("like") + " (" + config.model_type + ")"
                                : flags.str("arch") + " " + flags.str("preset");
  std::fprintf(stderr, "bench train: %s, %lld parameters, on %s\n", name.c_str(),
               static_cast<long long>(config.parameter_count()), dev.name.c_str());
  Transformer model(config, dev.device, dtype);
  model.init_weights(seed);
  model.set_requires_grad(true);
  model.set_recompute(flags.on("recompute"));
  const auto params = model.parameters();
  AdamW optimizer(params);
  Backend& backend = backend_for(dev.device);

  std::vector<int32_t> pos(static_cast<size_t>(B * T));
  for (int64_t i = 0; i < B * T; ++i) pos[static_cast<size_t>(i)] = static_cast<int32_t>(i % T);
  const Tensor positions = Tensor::from_vector(pos, {B, T}).to(dev.device);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(config.vocab_size - 1));
  std::vector<int32_t> ids(static_cast<size_t>(B * T)), targets(ids.size());

  double loss = 0.0;
  // One training step on fresh random tokens; returns its wall seconds.
  auto train_step = [&] {
    for (auto& v : ids) v = token(rng);
    for (auto& v : targets) v = token(rng);
    backend.synchronize();
    auto t0 = std::chrono::steady_clock::now();
    // Uploading the batch is part of a real step, so it is inside the timed region.
    TransformerInput input{Tensor::from_vector(ids, {B, T}).to(dev.device), positions, Tensor()};
    Tensor y = Tensor::from_vector(targets, {B, T}).to(dev.device);
    Variable l = mean_all(model.token_losses(input, y));
    l.backward();
    // Clipping as the trainer does it: the factor is applied as AdamW reads each gradient.
    optimizer.step(1e-4, static_cast<float>(clip_factor(global_grad_norm(params), 1.0)));
    optimizer.zero_grad();
    loss = l.data().item();
    backend.synchronize();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  std::vector<double> seconds;
  for (int64_t step = 0; step < warmup + steps; ++step) {
    const double s = train_step();
    if (step >= warmup) seconds.push_back(s);
  }

  const double step_s = median(seconds);
  const double tokens_per_s = static_cast<double>(B * T) / step_s;
  const double flops_per_token = train_flops_per_token(config, T);
  const double achieved = flops_per_token * tokens_per_s;
  const double mfu = dev.peak_bf16_flops > 0 ? achieved / dev.peak_bf16_flops : NAN;
  const double peak_bytes = static_cast<double>(peak_memory_bytes(dev.device));
  const auto [min_s, max_s] = std::minmax_element(seconds.begin(), seconds.end());

  std::printf(
      "bench train: %s (%.2fM parameters), %s, %s, batch %lld x seq %lld, %lld steps "
      "after %lld warm-up\n",
      name.c_str(), static_cast<double>(config.parameter_count()) / 1e6, dev.name.c_str(),
      dtype_name(dtype), static_cast<long long>(B), static_cast<long long>(T),
      static_cast<long long>(steps), static_cast<long long>(warmup));
  Table table({"metric", "value"});
  table.add({"tokens/s", fixed(tokens_per_s, 0)});
  table.add({"ms/step (median)", fixed(step_s * 1e3, 2)});
  table.add({"ms/step (min..max)", fixed(*min_s * 1e3, 2) + " .. " + fixed(*max_s * 1e3, 2)});
  table.add({"peak tensor memory", human_bytes(peak_bytes)});
  table.add({"activation recompute", flags.on("recompute") ? "on" : "off"});
  table.add({"achieved TFLOP/s", fixed(achieved / 1e12, 3)});
  table.add({"peak bf16 TFLOP/s", dev.peak_bf16_flops > 0 ? fixed(dev.peak_bf16_flops / 1e12, 0)
                                                          : "n/a (not in the table)"});
  table.add({"MFU", std::isfinite(mfu) ? fixed(100.0 * mfu, 1) + "%" : "n/a"});
  table.add({"final loss", fixed(loss, 4)});
  table.print();

  // Profiled steps come after the timed ones (and after `loss` was read), so they change none of
  // the figures above. Every primitive called through backend_for is timed on the device
  // (kernels/profiling_backend.h); the rest of each step's wall time is device time outside any
  // primitive: idle while the host (autograd, allocation, launches) falls behind, or uploads.
  constexpr int kProfileSteps = 2;
  std::vector<JsonObject> profile_json;
  double profile_wall_s = 0.0, profile_inside_s = 0.0;
  if (flags.on("profile")) {
    ProfilingBackend* prof = enable_profiling(dev.device);
    prof->reset();
    const double final_loss = loss;
    for (int i = 0; i < kProfileSteps; ++i) profile_wall_s += train_step();
    disable_profiling(dev.device);
    loss = final_loss;
    profile_inside_s = prof->total_seconds();
    std::printf(
        "\nprofile: %d steps, %.2f ms/step with every primitive timed (%.2f untimed), %.2f "
        "ms/step inside primitives, %.2f ms/step outside them\n",
        kProfileSteps, profile_wall_s * 1e3 / kProfileSteps, step_s * 1e3,
        profile_inside_s * 1e3 / kProfileSteps,
        (profile_wall_s - profile_inside_s) * 1e3 / kProfileSteps);
    std::fflush(stdout);  // report() writes to std::cout: keep the two streams in order
    prof->report(std::cout, static_cast<int>(flags.integer("profile-top")), profile_wall_s);
    std::cout.flush();
    for (const ProfileEntry& e : prof->entries()) {
      JsonObject row;
      row.str("name", e.name)
          .integer("calls", e.calls)
          .num("total_ms", e.seconds * 1e3)
          .num("pct", profile_wall_s > 0 ? 100.0 * e.seconds / profile_wall_s : NAN);
      if (e.flops > 0) row.num("tflops", e.flops / e.seconds / 1e12);
      if (e.bytes > 0) row.num("gb_s", e.bytes / e.seconds / 1e9);
      profile_json.push_back(row);
    }
  }

  if (!flags.str("json").empty()) {
    JsonObject json;
    json.str("bench", "train")
        .str("arch", like ? config.model_type : flags.str("arch"))
        .str("preset", like ? "" : flags.str("preset"))
        .str("like", like ? flags.str("like") : "")
        .str("device", dev.device.str())
        .str("device_name", dev.name)
        .str("dtype", dtype_name(dtype))
        .integer("recompute", flags.on("recompute") ? 1 : 0)
        .integer("params", config.parameter_count())
        .integer("batch", B)
        .integer("seq", T)
        .integer("steps", steps)
        .integer("warmup", warmup)
        .num("tokens_per_s", tokens_per_s)
        .num("ms_per_step", step_s * 1e3)
        .integer("peak_memory_bytes", static_cast<long long>(peak_bytes))
        .num("flops_per_token", flops_per_token)
        .num("achieved_tflops", achieved / 1e12)
        .num("peak_tflops", dev.peak_bf16_flops > 0 ? dev.peak_bf16_flops / 1e12 : NAN)
        .num("mfu", mfu)
        .num("loss", loss);
    if (flags.on("profile")) {
      // Totals over the profiled steps; pct is of their wall time, so the entries and
      // outside_primitives_ms add up to 100%.
      json.integer("profile_steps", kProfileSteps)
          .num("profile_wall_ms", profile_wall_s * 1e3)
          .num("outside_primitives_ms", (profile_wall_s - profile_inside_s) * 1e3)
          .array("profile", profile_json);
    }
    write_json_file(flags.str("json"), json);
  }
  return 0;
}

}  // namespace rlaif::cli
