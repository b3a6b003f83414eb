// Hugging Face config.json parsing: the real shipped config, each family's key names, and the
// errors for what rlaif cannot honour.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "model/config.h"
#include "runtime/error.h"
#include "tests/support/source_dir.h"

namespace rlaif {
namespace {

using test::source_dir;

std::string error_of(const std::string& json) {
  try {
    ModelConfig::from_json(json, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error for " << json;
  return "";
}

TEST(ModelConfig, LoadsShippedStories260K) {
  ModelConfig c = ModelConfig::load(source_dir() + "/data/models/stories260K/config.json");
  EXPECT_EQ(c.arch, Arch::llama);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_layers, 5);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-5);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 2);
  EXPECT_FALSE(c.qkv_bias);
  // 5 layers × (q 64·64 + k,v 2·32·64 + o 64·64 + mlp 3·64·172 + 2 norms of 64) + embedding
  // 512·64 + final norm 64; the head is tied.
  EXPECT_EQ(c.parameter_count(), 5 * (4096 + 4096 + 4096 + 33024 + 128) + 32768 + 64);
}

TEST(ModelConfig, Gpt2KeyNames) {
  ModelConfig c = ModelConfig::from_json(
      R"({"model_type": "gpt2", "vocab_size": 50257, "n_embd": 768, "n_layer": 12, "n_head": 12,
          "n_positions": 1024, "n_inner": null, "layer_norm_epsilon": 1e-5,
          "activation_function": "gelu_new", "bos_token_id": 50256, "eos_token_id": 50256})",
      "gpt2.json");
  EXPECT_EQ(c.arch, Arch::gpt2);
  EXPECT_EQ(c.intermediate_size, 3072);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_TRUE(c.tie_word_embeddings && c.qkv_bias && c.o_bias && c.mlp_bias);
  EXPECT_EQ(c.parameter_count(), 124439808);  // GPT-2 small, as HF counts it
}

TEST(ModelConfig, Qwen2HasQkvBiasOnly) {
  ModelConfig c = ModelConfig::from_json(
      R"({"model_type": "qwen2", "vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2,
          "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 64,
          "tie_word_embeddings": true, "use_sliding_window": false, "sliding_window": 4096})",
      "qwen2.json");
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.num_kv_heads, 2);
}

// Which layers slide, as transformers' configuration classes decide it: Mistral every layer when
// sliding_window is set; Qwen2 and Qwen3 only with use_sliding_window, then the layers from
// max_window_layers on unless layer_types says otherwise. The choice survives a round trip.
TEST(ModelConfig, SlidingWindowLayers) {
  const std::string shape =
      R"("vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4,
         "intermediate_size": 64)";
  auto parse = [&](const std::string& extra) {
    return ModelConfig::from_json("{" + shape + ", " + extra + "}", "sliding.json");
  };
  ModelConfig mistral = parse(R"("model_type": "mistral", "sliding_window": 4096)");
  EXPECT_EQ(mistral.sliding_window, 4096);
  EXPECT_EQ(mistral.sliding_layers, std::vector<bool>(4, true));
  EXPECT_TRUE(parse(R"("model_type": "mistral", "sliding_window": null)").sliding_layers.empty());

  ModelConfig qwen2 = parse(
      R"("model_type": "qwen2", "use_sliding_window": true, "sliding_window": 64,
         "max_window_layers": 1)");
  EXPECT_EQ(qwen2.sliding_window, 64);
  EXPECT_EQ(qwen2.sliding_layers, (std::vector<bool>{false, true, true, true}));
  // max_window_layers ≥ the layer count: no layer slides, so no window is kept.
  ModelConfig none = parse(
      R"("model_type": "qwen2", "use_sliding_window": true, "sliding_window": 64,
         "max_window_layers": 28)");
  EXPECT_EQ(none.sliding_window, 0);
  EXPECT_TRUE(none.sliding_layers.empty());
  ModelConfig listed = parse(
      R"("model_type": "qwen3", "use_sliding_window": true, "sliding_window": 8,
         "layer_types": ["sliding_attention", "full_attention", "sliding_attention",
                         "full_attention"])");
  EXPECT_EQ(listed.sliding_layers, (std::vector<bool>{true, false, true, false}));
  for (const ModelConfig& c : {mistral, qwen2, listed}) {
    ModelConfig again = ModelConfig::from_json(c.to_json(), "again.json");
    EXPECT_EQ(again.sliding_layers, c.sliding_layers) << c.model_type;
    EXPECT_EQ(again.sliding_window, c.sliding_window) << c.model_type;
  }
  EXPECT_NE(error_of("{" + shape + R"(, "model_type": "mistral", "sliding_window": 0})")
                .find("\"sliding_window\" is 0"),
            std::string::npos);
}

// Qwen3-0.6B's shape: a head size (128) that is not hidden / heads, q/k norms, tied head, and the
// keys its config carries that change nothing here (sliding_window null, use_sliding_window
// false, max_window_layers, rope_scaling null).
TEST(ModelConfig, Qwen3HasQkNormsAndItsOwnHeadSize) {
  ModelConfig c = ModelConfig::from_json(
      R"({"architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "head_dim": 128,
          "hidden_act": "silu", "hidden_size": 1024, "intermediate_size": 3072,
          "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
          "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
          "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000,
          "sliding_window": null, "tie_word_embeddings": true, "use_sliding_window": false,
          "vocab_size": 151936})",
      "qwen3.json");
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias || c.o_bias || c.mlp_bias);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.parameter_count(), 596049920);  // Qwen3-0.6B as transformers counts it
  ModelConfig again = ModelConfig::from_json(c.to_json(), "again.json");
  EXPECT_TRUE(again.qk_norm);
  EXPECT_EQ(again.to_json(), c.to_json());
  EXPECT_NE(c.to_json().find("Qwen3ForCausalLM"), std::string::npos);
}

// Gemma 3 1B's shape (gemma3_text): which layers slide comes from sliding_window_pattern (every
// 6th layer is global) or from layer_types; soft-capping and the multimodal wrapper are refused.
TEST(ModelConfig, Gemma3LayersNormsAndRefusals) {
  const std::string shape =
      R"("model_type": "gemma3_text", "vocab_size": 262144, "hidden_size": 1152,
         "intermediate_size": 6912, "num_hidden_layers": 26, "num_attention_heads": 4,
         "num_key_value_heads": 1, "head_dim": 256, "query_pre_attn_scalar": 256,
         "rope_theta": 1000000, "rope_local_base_freq": 10000, "sliding_window": 512,
         "max_position_embeddings": 32768, "rope_scaling": null)";
  ModelConfig c = ModelConfig::from_json(
      "{" + shape + R"(, "sliding_window_pattern": 6, "final_logit_softcapping": null,
                         "attn_logit_softcapping": null})",
      "g.json");
  EXPECT_TRUE(c.gemma && c.qk_norm && c.tie_word_embeddings);
  EXPECT_EQ(c.sliding_window, 512);
  ASSERT_EQ(c.sliding_layers.size(), 26u);
  for (size_t i = 0; i < 26; ++i) EXPECT_EQ(c.sliding_layers[i], (i + 1) % 6 != 0) << i;
  EXPECT_DOUBLE_EQ(c.attention_scale, 1.0 / 16);
  EXPECT_DOUBLE_EQ(c.embedding_scale, std::sqrt(1152.0));
  EXPECT_EQ(c.parameter_count(), 999885952);  // Gemma 3 1B as transformers counts it
  ModelConfig again = ModelConfig::from_json(c.to_json(), "again.json");
  EXPECT_EQ(again.sliding_layers, c.sliding_layers);
  EXPECT_EQ(again.to_json(), c.to_json());

  EXPECT_NE(error_of("{" + shape + R"(, "layer_types": ["sliding_attention"]})")
                .find("\"layer_types\" lists 1 layers, not 26"),
            std::string::npos);
  EXPECT_NE(error_of("{" + shape + R"(, "final_logit_softcapping": 30.0})").find("soft-capping"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"model_type": "gemma3", "text_config": {}})").find("gemma3_text"),
            std::string::npos);
}

TEST(ModelConfig, RoundTripsThroughJson) {
  for (const char* json :
       {R"({"model_type": "llama", "vocab_size": 300, "hidden_size": 48, "num_hidden_layers": 3,
            "num_attention_heads": 6, "num_key_value_heads": 2, "intermediate_size": 128,
            "rope_theta": 500000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": false,
            "bos_token_id": 1, "eos_token_id": 2})",
        R"({"model_type": "gpt2", "vocab_size": 99, "n_embd": 32, "n_layer": 2, "n_head": 4,
            "n_positions": 64})",
        R"({"architectures": ["LlamaForSequenceClassification"], "model_type": "llama",
            "vocab_size": 300, "hidden_size": 48, "num_hidden_layers": 1,
            "num_attention_heads": 6, "intermediate_size": 128, "num_labels": 1})"}) {
    ModelConfig a = ModelConfig::from_json(json, "a.json");
    ModelConfig b = ModelConfig::from_json(a.to_json(), "b.json");
    EXPECT_EQ(a.to_json(), b.to_json());
    EXPECT_EQ(a.parameter_count(), b.parameter_count());
    EXPECT_EQ(a.num_labels, b.num_labels);
    EXPECT_EQ(a.rope_theta, b.rope_theta);
    EXPECT_EQ(a.num_kv_heads, b.num_kv_heads);
  }
}

TEST(ModelConfig, ErrorsNameTheFileAndKey) {
  const std::string base =
      R"("vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 64)";
  EXPECT_NE(error_of(R"({"model_type": "bert", )" + base + "}").find("\"model_type\" is \"bert\""),
            std::string::npos);
  EXPECT_NE(error_of("{" + base + "}").find("missing key \"model_type\""), std::string::npos);
  EXPECT_NE(error_of(R"({"model_type": "llama", "hidden_size": 32})").find("vocab_size"),
            std::string::npos);
  // RoPE scaling: the types not implemented are named; linear and llama3 need their numbers.
  const std::pair<const char*, const char*> rope_errors[] = {
      {R"({"rope_type": "yarn", "factor": 4.0})", "\"rope_scaling\" has type \"yarn\""},
      {R"({"type": "dynamic", "factor": 2.0})", "type \"dynamic\""},
      {R"({"type": "linear"})", "\"rope_scaling\".\"factor\""},
      {R"({"rope_type": "llama3", "factor": 8.0})", "original_max_position_embeddings"}};
  for (const auto& [scaling, expected] : rope_errors) {
    const std::string json =
        R"({"model_type": "llama", "rope_scaling": )" + std::string(scaling) + ", " + base + "}";
    EXPECT_NE(error_of(json).find(expected), std::string::npos) << scaling;
  }
  EXPECT_NE(
      error_of(R"({"model_type": "llama", "hidden_act": "gelu", )" + base + "}").find("hidden_act"),
      std::string::npos);
  EXPECT_NE(error_of(R"({"model_type": "llama", "num_key_value_heads": 3, )" + base + "}")
                .find("num_key_value_heads"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"model_type": "llama", "vocab_size": "many"})").find("integer"),
            std::string::npos);
  std::string msg = error_of("{not json");
  EXPECT_NE(msg.find("cfg.json: invalid JSON"), std::string::npos) << msg;
  EXPECT_THROW(ModelConfig::load("/nonexistent/config.json"), Error);
}

// A corrupt or hostile config is refused by its sizes, naming the key, before anything is
// allocated from them (the layer flags of a sliding window, the model's parameters).
TEST(ModelConfig, DeclaredSizesAreBounded) {
  const std::string llama = R"({"model_type": "llama", "hidden_size": 32, "num_attention_heads": 4,
                                "intermediate_size": 64, )";
  std::string e = error_of(llama + R"("vocab_size": 1000000000000, "num_hidden_layers": 2})");
  EXPECT_NE(e.find("cfg.json: \"vocab_size\" is 1000000000000, more than the"), std::string::npos)
      << e;
  // Mistral allocates a flag per layer for its sliding window: a billion layers is refused first.
  e = error_of(R"({"model_type": "mistral", "hidden_size": 32, "num_attention_heads": 4,
                   "intermediate_size": 64, "vocab_size": 10, "sliding_window": 8,
                   "num_hidden_layers": 1000000000})");
  EXPECT_NE(e.find("cfg.json: \"num_hidden_layers\" is 1000000000, more than the"),
            std::string::npos)
      << e;
  e = error_of(R"({"model_type": "mistral", "hidden_size": 32, "num_attention_heads": 4,
                   "intermediate_size": 64, "vocab_size": 10, "sliding_window": 8,
                   "num_hidden_layers": -3})");
  EXPECT_NE(e.find("cfg.json: \"num_hidden_layers\" must be positive, got -3"), std::string::npos)
      << e;
  // Each size within its bound, but together far too many parameters.
  e = error_of(R"({"model_type": "llama", "vocab_size": 2000000000, "hidden_size": 1000000,
                   "num_attention_heads": 8, "intermediate_size": 64, "num_hidden_layers": 2})");
  EXPECT_NE(e.find("parameters, more than the"), std::string::npos) << e;
  // A number too large for int64 is no integer (converting it would be undefined).
  e = error_of(llama + R"("vocab_size": 1e30, "num_hidden_layers": 2})");
  EXPECT_NE(e.find("cfg.json: \"vocab_size\" must be an integer"), std::string::npos) << e;
  // A number past double's range reads as infinity: refused, as a RoPE base of 0 is.
  e = error_of(llama + R"("vocab_size": 10, "num_hidden_layers": 2, "rope_theta": 101e308})");
  EXPECT_NE(e.find("cfg.json: \"rope_theta\" is not a finite number"), std::string::npos) << e;
  e = error_of(llama + R"("vocab_size": 10, "num_hidden_layers": 2, "rope_theta": 0})");
  EXPECT_NE(e.find("cfg.json: \"rope_theta\" must be positive"), std::string::npos) << e;
  // GPT-2's default n_inner (4 n_embd) is computed only from a bounded n_embd.
  e = error_of(R"({"model_type": "gpt2", "vocab_size": 10, "n_embd": 4611686018427387904,
                   "n_layer": 1, "n_head": 1, "n_positions": 8})");
  EXPECT_NE(e.find("cfg.json: \"n_embd\" is 4611686018427387904, more than the"), std::string::npos)
      << e;
}

}  // namespace
}  // namespace rlaif
