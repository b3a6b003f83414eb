// Tiny model configs for tests: a few layers of width 8 to 32, so that a forward pass, a
// gradient check or a few training steps take milliseconds. Each names what it exercises.
#pragma once

#include <cstdint>

#include "model/config.h"

namespace rlaif::test {

// GPT-2: learned positions, LayerNorm, biases everywhere, tied head; vocabulary 23, context 12.
inline ModelConfig tiny_gpt2() {
  ModelConfig c;
  c.model_type = "gpt2";
  c.arch = Arch::gpt2;
  c.vocab_size = 23;
  c.hidden_size = 16;
  c.num_layers = 2;
  c.num_heads = 2;
  c.num_kv_heads = 2;
  c.head_dim = 8;
  c.intermediate_size = 32;
  c.max_position_embeddings = 12;
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  c.tie_word_embeddings = true;
  return c;
}

// Grouped-query attention (4 query heads over 2 kv heads), untied head, Qwen2-style q/k/v biases.
inline ModelConfig tiny_llama() {
  ModelConfig c;
  c.model_type = "qwen2";
  c.arch = Arch::llama;
  c.vocab_size = 29;
  c.hidden_size = 16;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 4;
  c.intermediate_size = 24;
  c.max_position_embeddings = 16;
  c.rope_theta = 10000.0;
  c.qkv_bias = true;
  c.tie_word_embeddings = false;
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
  ModelConfig c;
  c.model_type = "llama";
  c.vocab_size = 11;
  c.hidden_size = 8;
  c.num_layers = 1;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 4;
  c.intermediate_size = 16;
  c.max_position_embeddings = 8;
  return c;
}

// A 2-layer Llama of width 32 with a tied head, any vocabulary and context: the pretraining tests'
// model.
inline ModelConfig small_llama(int64_t vocab, int64_t seq) {
  ModelConfig c;
  c.model_type = "llama";
  c.arch = Arch::llama;
  c.vocab_size = vocab;
  c.hidden_size = 32;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 8;
  c.intermediate_size = 64;
  c.max_position_embeddings = seq;
  c.tie_word_embeddings = true;
  return c;
}

// The preference tests' model: 2 layers, d = 16, grouped-query attention, untied head,
// vocabulary 23, context 16.
inline ModelConfig preference_tiny_config() {
  ModelConfig c;
  c.model_type = "llama";
  c.arch = Arch::llama;
  c.vocab_size = 23;
  c.hidden_size = 16;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 4;
  c.intermediate_size = 24;
  c.max_position_embeddings = 16;
  c.tie_word_embeddings = false;
  return c;
}

}  // namespace rlaif::test
