#include "tools/bench_presets.h"

#include "tools/cli_flags.h"

namespace rlaif::cli {
namespace {

struct Shape {
  const char* arch;
  const char* preset;
  int64_t layers, d_model, heads, kv_heads, ffn, vocab, context;
};

// GPT-2 124M and 350M are the published GPT-2 small and medium. GPT-2 has no 1B: 32 layers of
// width 1600 (GPT-2 XL's width, 64-wide heads) come to 1.06B. The Llama presets use a 32000
// vocabulary and grouped-query attention; 1B is TinyLlama-1.1B's shape with a tied head. The
// tiny presets keep the architecture but shrink everything (vocabulary included) to ~1M
// parameters, so a CPU step takes milliseconds.
constexpr Shape kShapes[] = {
    {"gpt2", "tiny", 4, 128, 4, 4, 512, 2048, 256},
    {"gpt2", "124M", 12, 768, 12, 12, 3072, 50257, 1024},
    {"gpt2", "350M", 24, 1024, 16, 16, 4096, 50257, 1024},
    {"gpt2", "1B", 32, 1600, 25, 25, 6400, 50257, 1024},
    {"llama", "tiny", 4, 128, 4, 2, 352, 2048, 256},
    {"llama", "124M", 12, 768, 12, 4, 2048, 32000, 1024},
    {"llama", "350M", 24, 1024, 16, 4, 2816, 32000, 1024},
    {"llama", "1B", 22, 2048, 32, 4, 5632, 32000, 2048},
};

}  // namespace

ModelConfig bench_preset(const std::string& arch, const std::string& preset) {
  if (arch != "gpt2" && arch != "llama") throw UsageError("--arch must be gpt2 or llama");
  for (const Shape& s : kShapes) {
    if (arch != s.arch || preset != s.preset) continue;
    ModelConfig c;
    c.model_type = arch;
    c.arch = arch == "gpt2" ? Arch::gpt2 : Arch::llama;
    c.num_layers = s.layers;
    c.hidden_size = s.d_model;
    c.num_heads = s.heads;
    c.num_kv_heads = s.kv_heads;
    c.head_dim = s.d_model / s.heads;
    c.intermediate_size = s.ffn;
    c.vocab_size = s.vocab;
    c.max_position_embeddings = s.context;
    c.norm_eps = 1e-5;
    c.tie_word_embeddings = true;
    if (c.is_gpt2()) c.qkv_bias = c.o_bias = c.mlp_bias = true;
    c.validate("bench preset " + arch + " " + preset);
    return c;
  }
  throw UsageError("--preset must be tiny, 124M, 350M or 1B, not '" + preset + "'");
}

double train_flops_per_token(const ModelConfig& config, int64_t seq) {
  const double n = static_cast<double>(config.parameter_count());
  return 6.0 * n + 6.0 * static_cast<double>(config.num_layers) *
                       static_cast<double>(config.hidden_size) * static_cast<double>(seq);
}

std::string bench_preset_help() {
  std::string text;
  for (const Shape& s : kShapes) {
    text += "\n    " + std::string(s.arch) + " " + s.preset + ": " + std::to_string(s.layers) +
            " layers, d " + std::to_string(s.d_model) + ", " + std::to_string(s.heads) + " heads";
    if (s.kv_heads != s.heads) text += " (" + std::to_string(s.kv_heads) + " kv)";
    text += ", ffn " + std::to_string(s.ffn) + ", vocab " + std::to_string(s.vocab) + ", context " +
            std::to_string(s.context);
  }
  return text;
}

}  // namespace rlaif::cli
