// The published config.json files of real models (tests/data/hf_configs): each parses, describes
// the model its authors describe (parameter counts as their model cards give them), keeps what
// changes the computation (RoPE scaling, sliding layers, end-of-sequence ids), and survives the
// round trip through the config.json that rlaif writes, so `rlaif init --like` builds exactly
// that shape.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model/config.h"
#include "tests/model/model_test_util.h"

namespace rlaif {
namespace {

ModelConfig published(const std::string& name) {
  return ModelConfig::load(testing::source_dir() + "/tests/data/hf_configs/" + name + ".json");
}

// A published config and the figures its model card gives: the parameter count and depth.
struct CardFigures {
  const char* file;
  const char* model_type;
  int64_t parameters;
  int64_t layers;
};

class PublishedConfigs : public ::testing::TestWithParam<CardFigures> {};

TEST_P(PublishedConfigs, ParseToTheShapeTheirAuthorsPublishAndRoundTrip) {
  const CardFigures& card = GetParam();
  const ModelConfig c = published(card.file);
  EXPECT_EQ(c.model_type, card.model_type);
  EXPECT_EQ(c.num_layers, card.layers);
  EXPECT_EQ(c.parameter_count(), card.parameters);
  // rlaif's own config.json describes the same model: what `init --like` writes.
  const ModelConfig again = ModelConfig::from_json(c.to_json(), "again.json");
  EXPECT_EQ(again.to_json(), c.to_json());
  EXPECT_EQ(again.parameter_count(), card.parameters);
  EXPECT_EQ(again.sliding_layers, c.sliding_layers);
  EXPECT_EQ(again.sliding_window, c.sliding_window);
  EXPECT_EQ(again.rope_inverse_frequencies(), c.rope_inverse_frequencies());
}

// Exact counts; the model cards round them: GPT-2 "124M", Llama 3.2 "1.23B", Gemma 3 "1B",
// SmolLM2 "135M", Qwen2.5-0.5B "0.49B (0.36B non-embedding)", Qwen3-0.6B "0.6B (0.44B
// non-embedding)". Tied heads count once.
INSTANTIATE_TEST_SUITE_P(Models, PublishedConfigs,
                         ::testing::Values(CardFigures{"gpt2", "gpt2", 124439808, 12},
                                           CardFigures{"llama3_2_1b", "llama", 1235814400, 16},
                                           CardFigures{"gemma3_1b_it", "gemma3_text", 999885952,
                                                       26},
                                           CardFigures{"smollm2_135m", "llama", 134515008, 30},
                                           CardFigures{"qwen2_5_0_5b", "qwen2", 494032768, 24},
                                           CardFigures{"qwen3_0_6b", "qwen3", 596049920, 28}),
                         [](const auto& info) { return std::string(info.param.file); });

TEST(PublishedConfigs, NonEmbeddingCountsMatchTheQwenCards) {
  for (const auto& [file, non_embedding_billions] :
       std::vector<std::pair<std::string, double>>{{"qwen2_5_0_5b", 0.36}, {"qwen3_0_6b", 0.44}}) {
    const ModelConfig c = published(file);
    const double rest = static_cast<double>(c.parameter_count() - c.vocab_size * c.hidden_size);
    EXPECT_NEAR(rest / 1e9, non_embedding_billions, 0.005) << file;
  }
}

TEST(PublishedConfigs, WhatChangesTheComputationIsKept) {
  // Llama 3.2: Llama 3's RoPE rescaling, tied head, 64-wide heads over 8 kv heads.
  const ModelConfig llama = published("llama3_2_1b");
  EXPECT_EQ(llama.rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(llama.rope_scaling.factor, 32.0);
  EXPECT_DOUBLE_EQ(llama.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(llama.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(llama.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(llama.rope_theta, 500000.0);
  EXPECT_TRUE(llama.tie_word_embeddings);
  EXPECT_EQ(llama.head_dim, 64);
  EXPECT_EQ(llama.num_kv_heads, 8);
  EXPECT_EQ(llama.eos_token_id, 128001);

  // Gemma 3 1B: five sliding layers of 512 keys (local RoPE base 10^4) per global one, attention
  // scaled by 256^-1/2, two end-of-turn ids.
  const ModelConfig gemma = published("gemma3_1b_it");
  EXPECT_TRUE(gemma.gemma && gemma.qk_norm && gemma.tie_word_embeddings);
  EXPECT_EQ(gemma.sliding_window, 512);
  ASSERT_EQ(gemma.sliding_layers.size(), 26u);
  for (size_t i = 0; i < 26; ++i) EXPECT_EQ(gemma.sliding_layers[i], (i + 1) % 6 != 0) << i;
  EXPECT_DOUBLE_EQ(gemma.rope_local_theta, 10000.0);
  EXPECT_DOUBLE_EQ(gemma.rope_theta, 1000000.0);
  EXPECT_DOUBLE_EQ(gemma.attention_scale, 1.0 / 16.0);
  EXPECT_EQ(gemma.eos_token_ids, (std::vector<int32_t>{1, 106}));

  // Qwen2.5 carries a sliding_window but turns it off (use_sliding_window false); q/k/v biases.
  const ModelConfig qwen25 = published("qwen2_5_0_5b");
  EXPECT_EQ(qwen25.sliding_window, 0);
  EXPECT_TRUE(qwen25.sliding_layers.empty());
  EXPECT_TRUE(qwen25.qkv_bias && !qwen25.o_bias);

  // Qwen3: q/k norms and a head size (128) that is not hidden / heads (64).
  const ModelConfig qwen3 = published("qwen3_0_6b");
  EXPECT_TRUE(qwen3.qk_norm);
  EXPECT_EQ(qwen3.head_dim, 128);
  EXPECT_EQ(qwen3.hidden_size / qwen3.num_heads, 64);

  // SmolLM2: a Llama with 64-wide heads over 3 kv heads and RoPE base 10^5.
  const ModelConfig smol = published("smollm2_135m");
  EXPECT_EQ(smol.head_dim, 64);
  EXPECT_EQ(smol.num_kv_heads, 3);
  EXPECT_DOUBLE_EQ(smol.rope_theta, 100000.0);

  // GPT-2: learned positions over a 1024-token context.
  const ModelConfig gpt2 = published("gpt2");
  EXPECT_EQ(gpt2.arch, Arch::gpt2);
  EXPECT_EQ(gpt2.max_position_embeddings, 1024);
}

}  // namespace
}  // namespace rlaif
