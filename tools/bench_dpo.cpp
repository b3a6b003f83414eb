// `rlaif bench dpo`: the throughput of DPO training steps (algorithms/dpo.h) of a randomly
// initialised preset model on random preference pairs, with the reference model live and with
// its log-probs precomputed, side by side in one run.
//
// A step on B pairs of T tokens (a prompt of P tokens shared by the chosen and the rejected
// answer, then T − P answer tokens each):
//   live:        policy forward + backward on the 2B rows, reference forward on the same rows
//   precomputed: policy forward + backward only; the reference's log-probs of every pair were
//                computed once before training (timed apart) and the reference model released
// then gradient clipping at 1.0 and AdamW, as `rlaif dpo` does. FLOPs, llm.c's estimate: a
// forward + backward pass is train_flops_per_token per token, a forward pass a third of it, so a
// live step is 4/3 of a precomputed one; MFU divides by the GPU's dense bf16 peak.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "algorithms/adamw.h"
#include "algorithms/dpo.h"
#include "algorithms/grad_clip.h"
#include "algorithms/reference_logprobs.h"
#include "model/transformer.h"
#include "runtime/error.h"
#include "tools/bench_common.h"
#include "tools/bench_presets.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"

namespace rlaif::cli {
namespace {

struct DpoSetup {
  ModelConfig config;
  int64_t pairs = 0, seq = 0, prompt = 0, steps = 0, warmup = 0;
  BenchDevice dev;
  DType dtype = DType::f32;
  uint64_t seed = 0;
};

struct DpoRun {
  std::string mode;             // "live" or "precomputed"
  double precompute_s = 0;      // the reference log-probs' one-off pass (precomputed only)
  std::vector<double> seconds;  // each timed step
  double step_s = 0, peak_bytes = 0, first_loss = 0;
  double flops_per_step = 0;
};

// B pairs of random tokens: each pair's two sequences share their first `prompt` tokens.
std::vector<TokenizedPair> random_pairs(const DpoSetup& s) {
  std::mt19937_64 rng(s.seed + 1);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(s.config.vocab_size - 1));
  auto draw = [&](int64_t n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& id : ids) id = token(rng);
    return ids;
  };
  std::vector<TokenizedPair> pairs(static_cast<size_t>(s.pairs));
  for (TokenizedPair& p : pairs) {
    p.chosen.prompt = draw(s.prompt);
    p.rejected.prompt = p.chosen.prompt;
    p.chosen.completion = draw(s.seq - s.prompt);
    p.rejected.completion = draw(s.seq - s.prompt);
  }
  return pairs;
}

// Times `steps` DPO steps after `warmup` untimed ones on a fresh policy (and reference), and
// measures the peak tensor memory from the bytes live at the call. The first step's loss is
// log 2 exactly in exact arithmetic: policy and reference start equal, so every margin is 0.
DpoRun run_dpo(const DpoSetup& s, bool precompute) {
  reset_peak_memory(s.dev.device);
  DpoRun run;
  run.mode = precompute ? "precomputed" : "live";
  Backend& backend = backend_for(s.dev.device);
  Transformer policy(s.config, s.dev.device, s.dtype);
  policy.init_weights(s.seed);
  policy.set_requires_grad(true);
  auto reference = std::make_unique<Transformer>(s.config, s.dev.device, s.dtype);
  reference->init_weights(s.seed);
  std::vector<TokenizedPair> pairs = random_pairs(s);

  DpoReference ref;
  if (precompute) {
    backend.synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    ref.train = compute_ref_logprobs(*reference, pairs, s.pairs);
    backend.synchronize();
    run.precompute_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    reference.reset();  // what --precompute-ref saves: the reference's weights leave memory
  } else {
    ref.model = reference.get();
  }
  DpoOptions options;
  options.batch = s.pairs;
  options.seed = s.seed;
  DpoTask task(policy, std::move(ref), std::move(pairs), {}, options);
  const auto params = policy.parameters();
  AdamW optimizer(params);

  for (int64_t step = 0; step < s.warmup + s.steps; ++step) {
    backend.synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    const MicroBatchResult r = task.micro_batch(step, 0, 1.0);
    // Clipping as the trainer does it: the factor is applied as AdamW reads each gradient.
    optimizer.step(1e-6, static_cast<float>(clip_factor(global_grad_norm(params), 1.0)));
    optimizer.zero_grad();
    backend.synchronize();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (step == 0) run.first_loss = r.loss;
    if (step >= s.warmup) run.seconds.push_back(seconds);
  }
  run.step_s = median(run.seconds);
  run.peak_bytes = static_cast<double>(peak_memory_bytes(s.dev.device));
  const double tokens = 2.0 * static_cast<double>(s.pairs * s.seq);
  const double train = train_flops_per_token(s.config, s.seq) * tokens;
  run.flops_per_step = precompute ? train : train * 4.0 / 3.0;
  return run;
}

}  // namespace

int bench_dpo_main(const std::vector<std::string>& args) {
  Flags flags("bench dpo",
              "Time DPO training steps (sigmoid loss, beta 0.1, gradient clipping at 1.0,\n"
              "AdamW) of a randomly initialised preset model on random preference pairs: --pairs\n"
              "pairs of --seq tokens, the first --prompt shared by the chosen and the rejected\n"
              "answer. Two configurations, each on a fresh model: the reference model live (its\n"
              "forward pass on both answers in every step) and precomputed (its log-probs\n"
              "computed once, timed apart, and the model released: `rlaif dpo --precompute-ref`).\n"
              "Prints ms per step, pairs/s, tokens/s (both answers' tokens), peak tensor memory\n"
              "and MFU (llm.c's FLOP estimate; a forward pass is a third of a training pass; n/a\n"
              "on CPU). Presets:" +
                  bench_preset_help());
  flags.option("arch", "llama", "gpt2 or llama")
      .option("preset", "tiny", "tiny, 124M, 350M or 1B")
      .option("pairs", "8", "preference pairs per step (B; 2B sequences)")
      .option("seq", "0",
              "tokens per sequence (T), prompt included (0 = 512, or the context if less)")
      .option("prompt", "0", "prompt tokens of each sequence (P; 0 = half of --seq)")
      .option("mode", "live,precomputed", "configurations to time: live, precomputed, or both")
      .option("steps", "5", "timed steps per configuration")
      .option("warmup", "2", "untimed steps before them")
      .option("device", "cpu", "cpu or cuda[:N]")
      .option("dtype", "f32", "parameter and activation dtype: f32, or bf16 (cuda only)")
      .option("seed", "0", "seed of the weights and the tokens")
      .option("json", "", "also write the figures to this JSON file");
  if (!flags.parse(args)) return 0;

  DpoSetup s;
  s.config = bench_preset(flags.str("arch"), flags.str("preset"));
  s.config.num_labels = 0;
  s.pairs = flags.integer("pairs");
  s.seq = flags.integer("seq") != 0 ? flags.integer("seq")
                                    : std::min<int64_t>(512, s.config.max_position_embeddings);
  s.prompt = flags.integer("prompt") > 0 ? flags.integer("prompt") : s.seq / 2;
  s.steps = flags.integer("steps");
  s.warmup = flags.integer("warmup");
  if (s.pairs <= 0) throw UsageError("--pairs must be positive");
  if (s.seq < 2 || s.seq > s.config.max_position_embeddings) {
    throw UsageError("--seq must be in [2, " + std::to_string(s.config.max_position_embeddings) +
                     "], the model's context");
  }
  if (flags.integer("prompt") < 0 || s.prompt < 1 || s.prompt >= s.seq) {
    throw UsageError("--prompt must leave at least one answer token: in [1, --seq - 1]");
  }
  if (s.steps <= 0) throw UsageError("--steps must be positive");
  if (s.warmup < 0) throw UsageError("--warmup must not be negative");
  bool live = false, precomputed = false;
  for (const std::string& m : split_list(flags.str("mode"))) {
    if (m == "live") {
      live = true;
    } else if (m == "precomputed") {
      precomputed = true;
    } else {
      throw UsageError("--mode must list live and/or precomputed, not '" + m + "'");
    }
  }
  if (!live && !precomputed) throw UsageError("--mode must list live and/or precomputed");
  s.dev = bench_device(flags.str("device"));
  s.dtype = bench_dtype(flags.str("dtype"), s.dev);
  s.seed = static_cast<uint64_t>(flags.integer("seed"));

  const std::string name = flags.str("arch") + " " + flags.str("preset");
  std::fprintf(stderr, "bench dpo: %s, %lld parameters, on %s\n", name.c_str(),
               static_cast<long long>(s.config.parameter_count()), s.dev.name.c_str());
  std::vector<DpoRun> runs;
  if (live) runs.push_back(run_dpo(s, false));
  if (precomputed) runs.push_back(run_dpo(s, true));

  std::printf(
      "bench dpo: %s (%.2fM parameters), %s, %s, %lld pairs x %lld tokens (prompt %lld), "
      "%lld steps after %lld warm-up\n",
      name.c_str(), static_cast<double>(s.config.parameter_count()) / 1e6, s.dev.name.c_str(),
      dtype_name(s.dtype), static_cast<long long>(s.pairs), static_cast<long long>(s.seq),
      static_cast<long long>(s.prompt), static_cast<long long>(s.steps),
      static_cast<long long>(s.warmup));
  const double tokens = 2.0 * static_cast<double>(s.pairs * s.seq);
  Table table({"reference", "ms/step", "steps/s", "pairs/s", "tokens/s", "peak memory", "TFLOP/s",
               "MFU", "precompute s", "first loss"});
  std::vector<JsonObject> rows;
  for (const DpoRun& r : runs) {
    const double achieved = r.flops_per_step / r.step_s;
    const double mfu = s.dev.peak_bf16_flops > 0 ? achieved / s.dev.peak_bf16_flops : NAN;
    table.add({r.mode, fixed(r.step_s * 1e3, 2), fixed(1.0 / r.step_s, 2),
               fixed(static_cast<double>(s.pairs) / r.step_s, 1), fixed(tokens / r.step_s, 0),
               human_bytes(r.peak_bytes), fixed(achieved / 1e12, 3),
               std::isfinite(mfu) ? fixed(100.0 * mfu, 1) + "%" : "n/a",
               r.mode == "live" ? "" : fixed(r.precompute_s, 3), fixed(r.first_loss, 6)});
    JsonObject row;
    row.str("mode", r.mode)
        .num("ms_per_step", r.step_s * 1e3)
        .num("steps_per_s", 1.0 / r.step_s)
        .num("pairs_per_s", static_cast<double>(s.pairs) / r.step_s)
        .num("tokens_per_s", tokens / r.step_s)
        .integer("peak_memory_bytes", static_cast<long long>(r.peak_bytes))
        .num("achieved_tflops", achieved / 1e12)
        .num("mfu", mfu)
        .num("first_loss", r.first_loss);
    if (r.mode == "precomputed") row.num("precompute_s", r.precompute_s);
    rows.push_back(row);
  }
  table.print();
  if (runs.size() == 2) {
    std::printf("precomputed/live: %.2fx the steps/s, %.2fx the peak memory\n",
                runs[0].step_s / runs[1].step_s, runs[1].peak_bytes / runs[0].peak_bytes);
  }

  if (!flags.str("json").empty()) {
    JsonObject json;
    json.str("bench", "dpo")
        .str("arch", flags.str("arch"))
        .str("preset", flags.str("preset"))
        .str("device", s.dev.device.str())
        .str("device_name", s.dev.name)
        .str("dtype", dtype_name(s.dtype))
        .integer("params", s.config.parameter_count())
        .integer("pairs", s.pairs)
        .integer("seq", s.seq)
        .integer("prompt", s.prompt)
        .integer("steps", s.steps)
        .integer("warmup", s.warmup)
        .num("peak_tflops", s.dev.peak_bf16_flops > 0 ? s.dev.peak_bf16_flops / 1e12 : NAN)
        .array("rows", rows);
    write_json_file(flags.str("json"), json);
  }
  return 0;
}

}  // namespace rlaif::cli
