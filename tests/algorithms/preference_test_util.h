// What the preference tests (reward, dpo, kto, reference_free) share: hand-made token pairs for
// the tiny model of tests/support/tiny_models.h (for gradchecks), and the letter-sorting task's
// pairs tokenised for training (synthetic_sort.h).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "algorithms/preference_data.h"
#include "tests/algorithms/synthetic_sort.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_models.h"

namespace rlaif::testing {

using test::preference_tiny_config;

// The tiny preference model initialised from `seed`, every weight but the norms' multiplied by
// `gain` (larger weights than the init make every path matter to a loss).
inline Transformer tiny_model(uint64_t seed, float gain = 1.0f) {
  Transformer model(preference_tiny_config());
  model.init_weights(seed);
  if (gain == 1.0f) return model;
  for (auto& [name, p] : model.parameters()) {
    if (name.ends_with("norm.weight")) continue;
    float* d = p.data().data<float>();
    for (int64_t i = 0; i < p.numel(); ++i) d[i] *= gain;
  }
  return model;
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

using test::temp_dir;

}  // namespace rlaif::testing
