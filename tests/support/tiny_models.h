// Tiny model configs for tests: a few layers of width 8 to 32, so that a forward pass, a
// gradient check or a few training steps take milliseconds. Each names what it exercises.
#pragma once

#include <cstdint>

#include "model/config.h"

namespace rlaif::test {

// A Llama-family config of this shape; every other field keeps ModelConfig's default.
inline ModelConfig llama_shape(int64_t vocab, int64_t hidden, int64_t layers, int64_t heads,
                               int64_t kv_heads, int64_t head_dim, int64_t ffn, int64_t context,
                               bool tied) {
  ModelConfig c;
  c.model_type = "llama";
  c.arch = Arch::llama;
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = head_dim;
  c.intermediate_size = ffn;
  c.max_position_embeddings = context;
  c.tie_word_embeddings = tied;
  return c;
}

// GPT-2: learned positions, LayerNorm, biases everywhere, tied head; vocabulary 23, context 12.
inline ModelConfig tiny_gpt2() {
  ModelConfig c = llama_shape(23, 16, 2, 2, 2, 8, 32, 12, true);
  c.model_type = "gpt2";
  c.arch = Arch::gpt2;
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  return c;
}

// Grouped-query attention (4 query heads over 2 kv heads), untied head, Qwen2-style q/k/v biases.
inline ModelConfig tiny_llama() {
  ModelConfig c = llama_shape(29, 16, 2, 4, 2, 4, 24, 16, false);
  c.model_type = "qwen2";
  c.qkv_bias = true;
  return c;
}

// Qwen3's attention: per-head q/k RMSNorm, a head size (6) that is not hidden / heads (16 / 4),
// no q/k/v biases, grouped-query attention, tied head.
inline ModelConfig tiny_qwen3() {
  ModelConfig c = tiny_llama();
  c.model_type = "qwen3";
  c.head_dim = 6;
  c.qkv_bias = false;
  c.qk_norm = true;
  c.tie_word_embeddings = true;
  return c;
}

// Gemma 3's layer: (1 + w) norms around each block, q/k norms, a scaled embedding and attention,
// a GELU-gated MLP; layer 0 slides (its own RoPE base and a 3-key window, shorter than the test
// batches), layer 1 is global.
inline ModelConfig tiny_gemma3() {
  ModelConfig c = tiny_qwen3();
  c.model_type = "gemma3_text";
  c.gemma = true;
  c.embedding_scale = 4.0;
  c.attention_scale = 0.3;
  c.rope_local_theta = 100.0;
  c.sliding_layers = {true, false};
  c.sliding_window = 3;
  return c;
}

// A Llama with one layer, one kv head for two query heads, vocabulary 11, context 8: the trainer
// tests' model.
inline ModelConfig micro_llama() {
  return llama_shape(11, 8, 1, 2, 1, 4, 16, 8, true);
}

// A 2-layer Llama of width 32 with a tied head, any vocabulary and context: the pretraining tests'
// model.
inline ModelConfig small_llama(int64_t vocab, int64_t seq) {
  return llama_shape(vocab, 32, 2, 4, 2, 8, 64, seq, true);
}

// The preference tests' model: 2 layers, d = 16, grouped-query attention, untied head,
// vocabulary 23, context 16.
inline ModelConfig preference_tiny_config() {
  return llama_shape(23, 16, 2, 4, 2, 4, 24, 16, false);
}

}  // namespace rlaif::test
