// A transformer's hyper-parameters, parsed from (and written back to) a Hugging Face
// `config.json`.
//
// Two families: GPT-2 (`model_type` gpt2: learned positions, LayerNorm, GELU-tanh MLP, biases
// everywhere, head tied to the embedding) and Llama (`llama`, `mistral`, `qwen2`, `qwen3`:
// RMSNorm, rotate-half RoPE, SwiGLU MLP, grouped-query attention, tied or untied head; Qwen2 adds
// biases to q/k/v; Qwen3 normalises each head's q and k with an RMSNorm before RoPE; Gemma 3
// (`gemma3_text`) scales the embeddings by √hidden, weighs its RMSNorms by (1 + w), wraps each
// block in a pre- and a post-norm, normalises q and k, scales attention by
// query_pre_attn_scalar^-1/2, gates its MLP with the tanh GELU, and gives its sliding-window
// layers their own RoPE base). Anything the
// code cannot honour (an unknown model_type, rope_scaling, a non-default activation) is an Error
// naming the key, never a silently different model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rlaif {

enum class Arch { gpt2, llama };

// config.json's "rope_scaling": how RoPE's frequencies are rescaled for contexts longer than the
// model was first trained on. Type "" is plain RoPE; "linear" divides every frequency by
// `factor`; "llama3" (Llama 3.1/3.2) divides the low frequencies by `factor`, keeps the high
// ones and interpolates between, by wavelength against original_max_position_embeddings.
struct RopeScaling {
  std::string type;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 0;
};

struct ModelConfig {
  std::string model_type = "llama";  // gpt2 | llama | mistral | qwen2 | qwen3 | gemma3_text
  Arch arch = Arch::llama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;              // d_model (GPT-2: n_embd)
  int64_t num_layers = 0;               // GPT-2: n_layer
  int64_t num_heads = 0;                // GPT-2: n_head
  int64_t num_kv_heads = 0;             // = num_heads unless grouped-query attention
  int64_t head_dim = 0;                 // hidden_size / num_heads unless the config says otherwise
  int64_t intermediate_size = 0;        // MLP width (GPT-2: n_inner, default 4·n_embd)
  int64_t max_position_embeddings = 0;  // GPT-2: n_positions
  double norm_eps = 1e-5;               // GPT-2: layer_norm_epsilon; Llama: rms_norm_eps
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = true;
  bool qkv_bias = false;  // biases on q/k/v projections (GPT-2, Qwen2, Llama attention_bias)
  bool o_bias = false;    // bias on the attention output projection (GPT-2, Llama attention_bias)
  bool mlp_bias = false;  // biases in the MLP (GPT-2, Llama mlp_bias)
  bool qk_norm = false;   // RMSNorm over each head's q and k, weights [head_dim] (Qwen3, Gemma 3)
  // Gemma 3. Its RMSNorms weigh by (1 + w); each block's output is normalised too, before the
  // residual add; attention scores are scaled by attention_scale instead of head_dim^-1/2; the
  // MLP gate is the tanh GELU; layer i attends within sliding_window and rotates by
  // rope_local_theta (unscaled) when sliding_layers[i].
  bool gemma = false;
  double embedding_scale = 1.0;  // √hidden_size for Gemma
  double attention_scale = 0.0;  // 0: head_dim^-1/2
  double rope_local_theta = 10000.0;
  // Layer i attends only to the sliding_window keys up to its query when sliding_layers[i]
  // (Gemma 3; Mistral; Qwen2 and Qwen3 with use_sliding_window).
  std::vector<bool> sliding_layers;  // empty: none
  int64_t sliding_window = 0;        // 0 = none
  int32_t bos_token_id = -1;
  int32_t eos_token_id = -1;
  // Every id of config.json's eos_token_id when it is a list (Llama 3.1 instruct lists
  // [128001, 128008, 128009]); empty when it is a single id. eos_token_id is the first.
  std::vector<int32_t> eos_token_ids;
  int32_t pad_token_id = -1;
  // Scalar-head models (reward and value): HF *ForSequenceClassification with num_labels = 1.
  int64_t num_labels = 0;

  // Parses config.json text; `source` (a path) prefixes every error message.
  static ModelConfig from_json(const std::string& json, const std::string& source);
  static ModelConfig load(const std::string& path);
  // config.json text that Hugging Face transformers loads into the same model.
  std::string to_json() const;

  // Checks internal consistency (heads divide, sizes positive); throws Error naming the field.
  void validate(const std::string& source) const;
  bool is_gpt2() const { return arch == Arch::gpt2; }
  // Number of trainable parameters of the language model (head counted once when tied).
  int64_t parameter_count() const;
  // RoPE's inverse frequencies for i < head_dim/2, theta^(-2i/head_dim), rescaled as
  // rope_scaling says (as transformers' rope initialisation functions compute them).
  std::vector<double> rope_inverse_frequencies() const;
};

}  // namespace rlaif
