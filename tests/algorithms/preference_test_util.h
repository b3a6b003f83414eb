// Shared by reward_test.cpp and dpo_test.cpp: a tiny model with hand-made token pairs (for
// gradchecks), the letter-sorting task's pairs tokenised for training (synthetic_sort.h), and a
// temporary directory per test.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "algorithms/preference_data.h"
#include "tests/algorithms/synthetic_sort.h"

namespace rlaif::testing {

// 2 layers, d = 16, grouped-query attention, untied head, context 16.
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

// Three pairs of different lengths (so rows are padded), sharing prompts as real pairs do.
inline std::vector<TokenizedPair> preference_tiny_pairs() {
  auto ex = [](std::vector<int32_t> prompt, std::vector<int32_t> completion) {
    return TokenizedExample{std::move(prompt), std::move(completion)};
  };
  return {
      {ex({1, 5, 7}, {3, 9, 2}), ex({1, 5, 7}, {4, 2}), 0.5},
      {ex({1, 8}, {11, 12, 13, 2}), ex({1, 8}, {6, 6, 6, 6, 2}), 1.0},
      {ex({1, 4, 4, 9, 10}, {20}), ex({1, 4, 4, 9, 10}, {21, 22}), 0.0},
  };
}

// The sorting task's preference pairs, tokenised as sort_tokenized() tokenises SFT examples.
inline std::vector<TokenizedPair> sort_tokenized_pairs(int64_t n, uint64_t seed, SortSplit split) {
  TruncationOptions t;
  t.max_length = sort_policy_config().max_position_embeddings;
  t.max_prompt_length = t.max_length - 16;
  return tokenize_pairs(sort_tokenizer(), sort_template(), sort_preference_pairs(n, seed, split),
                        t);
}

inline std::string preference_temp_dir(const std::string& name) {
  namespace fs = std::filesystem;
  fs::path p =
      fs::temp_directory_path() / ("rlaif_pref_test_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  return p.string();
}

}  // namespace rlaif::testing
