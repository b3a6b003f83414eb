// Small models and inputs shared by the model tests.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "autograd/node.h"
#include "model/lora.h"
#include "model/transformer.h"

namespace rlaif::testing {

inline std::string source_dir() {
  const char* dir = std::getenv("RLAIF_SOURCE_DIR");
  return dir ? dir : ".";
}

inline std::string stories_dir() {
  return source_dir() + "/data/models/stories260K";
}

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

// A [2, 5] batch: row 0 is 5 real tokens; row 1 is 2 left pads (own segment) then 3 tokens.
inline TransformerInput tiny_batch(int64_t vocab) {
  std::vector<int32_t> ids = {1, 5, 7, 2, 9, 0, 0, 3, 11, 4};
  for (auto& id : ids) id = static_cast<int32_t>(id % vocab);
  std::vector<int32_t> pos = {0, 1, 2, 3, 4, 0, 0, 0, 1, 2};
  std::vector<int32_t> seg = {0, 0, 0, 0, 0, -1, -1, 0, 0, 0};
  return {Tensor::from_vector(ids, {2, 5}), Tensor::from_vector(pos, {2, 5}),
          Tensor::from_vector(seg, {2, 5})};
}

// Next-token targets for tiny_batch with padding positions ignored (-100).
inline Tensor tiny_targets(int64_t vocab) {
  std::vector<int32_t> t = {5, 7, 2, 9, 4, -100, -100, 11, 4, 6};
  for (auto& id : t) {
    if (id >= 0) id = static_cast<int32_t>(id % vocab);
  }
  return Tensor::from_vector(t, {2, 5});
}

// A fresh directory under the system's temporary folder, removed with everything in it when the
// object goes. str(child) is the path of `child` inside it.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("rlaif_model_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str(const std::string& child = "") const { return (path_ / child).string(); }

 private:
  std::filesystem::path path_;
  static inline int counter_ = 0;
};

// How many nodes of the graph behind v run `op`.
inline int count_ops(const Variable& v, const std::string& op) {
  int n = 0;
  std::vector<const Node*> stack;
  std::unordered_set<const Node*> seen;
  if (v.grad_fn()) stack.push_back(v.grad_fn().get());
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    if (!seen.insert(node).second) continue;
    n += node->op == op;
    for (const Variable& in : node->inputs) {
      if (in.defined() && in.grad_fn()) stack.push_back(in.grad_fn().get());
    }
  }
  return n;
}

// A LoRA configuration of rank r on `targets` (PEFT module names).
inline LoraConfig lora(std::vector<std::string> targets, int64_t r = 4, double alpha = 8) {
  LoraConfig c;
  c.r = r;
  c.alpha = alpha;
  c.targets = std::move(targets);
  return c;
}

}  // namespace rlaif::testing
