// `rlaif bench generate`: tokens/s of model/generate.h's batched generation with the KV cache,
// for a preset model with random weights and random prompts, at one or more batch sizes.
#include <chrono>
#include <cstdio>
#include <random>

#include "model/generate.h"
#include "tools/bench_common.h"
#include "tools/bench_presets.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"

namespace rlaif::cli {
namespace {

struct GenerateTiming {
  double total_s = 0, prefill_s = 0, decode_s = 0;
};

// One generate() call, timed: prefill_s runs until the first token is sampled (prompt forward
// pass included), decode_s covers the remaining steps.
GenerateTiming time_generate(const Transformer& model,
                             const std::vector<std::vector<int32_t>>& prompts,
                             const GenerationOptions& options) {
  using clock = std::chrono::steady_clock;
  backend_for(model.device()).synchronize();
  auto t0 = clock::now(), first = t0;
  generate(model, prompts, options, {}, [&](int64_t step) {
    if (step == 1) first = clock::now();
  });
  // generate() reads every step's logits back to the host, so the device is idle here.
  auto t1 = clock::now();
  GenerateTiming t;
  t.total_s = std::chrono::duration<double>(t1 - t0).count();
  t.prefill_s = std::chrono::duration<double>(first - t0).count();
  t.decode_s = std::chrono::duration<double>(t1 - first).count();
  return t;
}

}  // namespace

int bench_generate_main(const std::vector<std::string>& args) {
  Flags flags("bench generate",
              "Time batched generation with the KV cache (greedy, never stopping early) of a\n"
              "randomly initialised preset model on random prompts. For each batch size prints\n"
              "the prefill time (prompt forward pass and first token), the decoding rate and the\n"
              "overall new tokens/s. Presets:" +
                  bench_preset_help());
  flags.option("arch", "llama", "gpt2 or llama")
      .option("preset", "tiny", "tiny, 124M, 350M or 1B")
      .option("batch", "1,8", "comma-separated batch sizes to time")
      .option("prompt-len", "128", "prompt tokens per sequence")
      .option("new-tokens", "128", "tokens generated per sequence")
      .option("reps", "1", "timed runs per batch size (medians are reported)")
      .option("device", "cpu", "cpu or cuda[:N]")
      .option("dtype", "f32", "parameter dtype: f32, or bf16 (cuda only)")
      .option("seed", "0", "seed of the weights and the prompts")
      .option("json", "", "also write the figures to this JSON file");
  if (!flags.parse(args)) return 0;

  ModelConfig config = bench_preset(flags.str("arch"), flags.str("preset"));
  const std::vector<int64_t> batches = positive_int_list("batch", flags.str("batch"));
  const int64_t P = flags.integer("prompt-len"), N = flags.integer("new-tokens");
  const int64_t reps = flags.integer("reps");
  if (P <= 0 || N <= 0) throw UsageError("--prompt-len and --new-tokens must be positive");
  if (P + N > config.max_position_embeddings) {
    throw UsageError("--prompt-len + --new-tokens = " + std::to_string(P + N) +
                     " exceeds the preset's context of " +
                     std::to_string(config.max_position_embeddings));
  }
  if (reps <= 0) throw UsageError("--reps must be positive");
  BenchDevice dev = bench_device(flags.str("device"));
  const DType dtype = bench_dtype(flags.str("dtype"), dev);
  const uint64_t seed = static_cast<uint64_t>(flags.integer("seed"));

  Transformer model(config, dev.device, dtype);
  model.init_weights(seed);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(config.vocab_size - 1));
  GenerationOptions options;
  options.max_new_tokens = N;
  options.sampling.temperature = 0.0f;  // greedy: sampling cost is not what is measured
  options.eos_ids.clear();              // every sequence generates exactly N tokens

  std::printf("bench generate: %s %s (%.2fM parameters), %s, %s, prompt %lld + %lld new tokens\n",
              flags.str("arch").c_str(), flags.str("preset").c_str(),
              static_cast<double>(config.parameter_count()) / 1e6, dev.name.c_str(),
              dtype_name(dtype), static_cast<long long>(P), static_cast<long long>(N));
  Table table({"batch", "prefill ms", "decode ms/step", "decode tok/s", "total tok/s"});
  std::vector<JsonObject> results;
  for (int64_t b : batches) {
    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(b));
    for (auto& p : prompts) {
      p.resize(static_cast<size_t>(P));
      for (auto& t : p) t = token(rng);
    }
    // Warm-up: first-use costs (backend start, allocator growth, GEMM plans) at this shape.
    GenerationOptions warm = options;
    warm.max_new_tokens = std::min<int64_t>(N, 2);
    generate(model, prompts, warm);
    std::vector<double> total, prefill, decode;
    for (int64_t r = 0; r < reps; ++r) {
      GenerateTiming t = time_generate(model, prompts, options);
      total.push_back(t.total_s);
      prefill.push_back(t.prefill_s);
      decode.push_back(t.decode_s);
    }
    const double bd = static_cast<double>(b);
    const double total_rate = bd * static_cast<double>(N) / median(total);
    const double decode_step = N > 1 ? median(decode) / static_cast<double>(N - 1) : NAN;
    const double decode_rate = bd / decode_step;
    table.add({std::to_string(b), fixed(median(prefill) * 1e3, 2), fixed(decode_step * 1e3, 3),
               fixed(decode_rate, 1), fixed(total_rate, 1)});
    JsonObject row;
    row.str("name", "batch" + std::to_string(b))
        .integer("batch", b)
        .num("prefill_ms", median(prefill) * 1e3)
        .num("decode_ms_per_step", decode_step * 1e3)
        .num("decode_tokens_per_s", decode_rate)
        .num("tokens_per_s", total_rate);
    results.push_back(row);
  }
  table.print();

  if (!flags.str("json").empty()) {
    JsonObject json;
    json.str("bench", "generate")
        .str("arch", flags.str("arch"))
        .str("preset", flags.str("preset"))
        .str("device", dev.device.str())
        .str("device_name", dev.name)
        .str("dtype", dtype_name(dtype))
        .integer("params", config.parameter_count())
        .integer("prompt_len", P)
        .integer("new_tokens", N)
        .array("results", results);
    write_json_file(flags.str("json"), json);
  }
  return 0;
}

}  // namespace rlaif::cli
