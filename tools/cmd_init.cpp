// `rlaif init`: a randomly initialised GPT-2, Llama, Qwen2 or Qwen3 model directory, of a shape
// given by flags or of a Hugging Face config.json's (--like).
#include <cstdio>

#include "io/model_dir.h"
#include "io/tokenizer.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"
#include "tools/train_flags.h"

namespace rlaif::cli {

namespace {

// `rlaif init --like CONFIG.json`: the config as it stands (its vocabulary, ids and every shape),
// checked against the tokenizer when one is given.
int init_like(const Flags& flags) {
  for (const char* shape : {"arch", "layers", "d-model", "heads", "kv-heads", "head-dim", "ffn",
                            "vocab", "seq", "rope-theta", "untied"}) {
    if (flags.given(shape)) {
      throw UsageError(std::string("--like takes every shape from its config.json: drop --") +
                       shape);
    }
  }
  ModelConfig c = ModelConfig::load(flags.str("like"));
  const std::string tokenizer = flags.str("tokenizer");
  if (!tokenizer.empty()) {
    const Tokenizer tok = Tokenizer::load(tokenizer);
    if (c.vocab_size < tok.vocab_size()) {
      throw UsageError(flags.str("like") + " has a vocabulary of " + std::to_string(c.vocab_size) +
                       ", smaller than the " + std::to_string(tok.vocab_size()) + " ids of " +
                       tokenizer);
    }
  }
  Transformer model(c);
  model.init_weights(static_cast<uint64_t>(flags.integer("seed")));
  save_model(flags.str("out"), model, tokenizer);
  std::printf("wrote %s: %s like %s, %lld parameters\n", flags.str("out").c_str(),
              c.model_type.c_str(), flags.str("like").c_str(),
              static_cast<long long>(c.parameter_count()));
  return 0;
}

}  // namespace

int init_main(const std::vector<std::string>& args) {
  Flags flags("init",
              "Write a randomly initialised model directory (GPT-2 style init: normal(0, 0.02),\n"
              "residual projections scaled by 1/sqrt(2*layers)).");
  flags
      .option("arch", "llama",
              "gpt2, llama, qwen2 (llama with q/k/v biases) or qwen3 (llama with q/k norms)")
      .option("layers", "", "number of transformer layers")
      .option("d-model", "", "hidden size")
      .option("heads", "", "attention heads")
      .option("kv-heads", "0", "key/value heads for grouped-query attention (llama; 0 = --heads)")
      .option("head-dim", "0", "size of each attention head (llama; 0 = --d-model / --heads)")
      .option("ffn", "0",
              "MLP width (0 = 4*d-model for gpt2, ~8/3*d-model rounded to 32 for llama)")
      .option("vocab", "0", "vocabulary size (0 = the tokenizer's)")
      .option("seq", "", "context length (maximum positions)")
      .option("tokenizer", "",
              "tokenizer to ship with the model: a directory (its tokenizer.json, vocab.json, "
              "merges.txt, tokenizer_config.json, generation_config.json, chat_template.jinja, "
              "... are copied), a tokenizer.json, or a SentencePiece .model file")
      .option("rope-theta", "10000", "RoPE base (llama)")
      .flag("untied", "give the llama model its own output head instead of reusing the embedding")
      .option("seed", "0", "initialisation seed")
      .option("like", "",
              "a Hugging Face config.json: make a random-weight model of exactly its shape (then "
              "only --tokenizer, --seed and --out apply), to rehearse a pipeline before using the "
              "real weights")
      .option("out", "", "output directory", true)
      .flag("overwrite", "replace the model or run already in --out (its files are removed first)");
  if (!flags.parse(args)) return 0;
  check_run_directory(flags.str("out"), /*resume=*/false, flags.on("overwrite"));
  if (flags.given("like")) return init_like(flags);
  for (const char* needed : {"layers", "d-model", "heads", "seq"}) {
    if (!flags.given(needed)) throw UsageError(std::string("missing --") + needed + " (or --like)");
  }

  ModelConfig c;
  std::string arch = flags.str("arch");
  if (arch != "gpt2" && arch != "llama" && arch != "qwen2" && arch != "qwen3") {
    throw UsageError("--arch must be gpt2, llama, qwen2 or qwen3");
  }
  c.model_type = arch;
  c.arch = arch == "gpt2" ? Arch::gpt2 : Arch::llama;
  c.qkv_bias = arch == "qwen2";
  c.qk_norm = arch == "qwen3";
  c.num_layers = flags.integer("layers");
  c.hidden_size = flags.integer("d-model");
  c.num_heads = flags.integer("heads");
  c.num_kv_heads = flags.integer("kv-heads") > 0 ? flags.integer("kv-heads") : c.num_heads;
  if (c.is_gpt2() && c.num_kv_heads != c.num_heads) {
    throw UsageError("--kv-heads: GPT-2 has no grouped-query attention");
  }
  c.head_dim = flags.integer("head-dim");
  if (c.head_dim < 0 || (c.head_dim > 0 && c.is_gpt2())) {
    throw UsageError("--head-dim must be positive, and GPT-2's is --d-model / --heads");
  }
  if (c.head_dim == 0) {
    if (c.num_heads <= 0 || c.hidden_size % c.num_heads != 0) {
      throw UsageError("--d-model must be a positive multiple of --heads (or give --head-dim)");
    }
    c.head_dim = c.hidden_size / c.num_heads;
  }
  int64_t ffn = flags.integer("ffn");
  if (ffn <= 0) ffn = c.is_gpt2() ? 4 * c.hidden_size : (8 * c.hidden_size / 3 + 31) / 32 * 32;
  c.intermediate_size = ffn;
  c.max_position_embeddings = flags.integer("seq");
  c.rope_theta = flags.number("rope-theta");
  c.norm_eps = 1e-5;
  c.tie_word_embeddings = c.is_gpt2() || !flags.on("untied");
  if (c.is_gpt2()) c.qkv_bias = c.o_bias = c.mlp_bias = true;
  c.vocab_size = flags.integer("vocab");
  std::string tokenizer = flags.str("tokenizer");
  if (!tokenizer.empty()) {
    Tokenizer tok = Tokenizer::load(tokenizer);
    if (c.vocab_size == 0) c.vocab_size = tok.vocab_size();
    if (c.vocab_size < tok.vocab_size()) {
      throw UsageError("--vocab " + std::to_string(c.vocab_size) + " is smaller than the " +
                       std::to_string(tok.vocab_size()) + " pieces of " + tokenizer);
    }
    c.bos_token_id = tok.bos_id();
    c.eos_token_id = tok.eos_id();
    c.pad_token_id = tok.pad_id();
  }
  if (c.vocab_size <= 0) throw UsageError("give --vocab or --tokenizer");
  c.validate("rlaif init");

  Transformer model(c);
  model.init_weights(static_cast<uint64_t>(flags.integer("seed")));
  save_model(flags.str("out"), model, tokenizer);
  std::printf(
      "wrote %s: %s, %lld parameters (%lld layers, d=%lld, %lld heads, %lld kv heads, "
      "ffn %lld, vocab %lld, context %lld)\n",
      flags.str("out").c_str(), arch.c_str(), static_cast<long long>(c.parameter_count()),
      static_cast<long long>(c.num_layers), static_cast<long long>(c.hidden_size),
      static_cast<long long>(c.num_heads), static_cast<long long>(c.num_kv_heads),
      static_cast<long long>(c.intermediate_size), static_cast<long long>(c.vocab_size),
      static_cast<long long>(c.max_position_embeddings));
  return 0;
}

}  // namespace rlaif::cli
