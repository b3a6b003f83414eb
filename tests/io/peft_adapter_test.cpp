// PEFT adapter directories (io/peft_adapter.h): the files save_adapter writes (tensor names and
// shapes, adapter_config.json), round trips to identical logits, adapters in PEFT's layout
// written by hand, and the errors for what rlaif cannot apply or a file gets wrong.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "kernels/backend.h"
#include "tests/io/io_test_util.h"
#include "tests/model/model_test_util.h"

namespace rlaif {
namespace {

using test::error_of;
using test::TempDir;
using testing::lora;

Transformer base_model(const ModelConfig& config) {
  Transformer m(config);
  m.init_weights(3);
  return m;
}

// Every adapter tensor (A and B) drawn at random, so that a round trip has something to keep.
void randomize_adapters(Transformer& m, uint64_t seed) {
  uint64_t k = 0;
  for (auto& [name, v] : m.adapter_parameters()) {
    backend_for(v.device()).random_uniform(v.data(), seed, (k++) << 32, -0.5f, 0.5f);
  }
}

std::vector<float> logits_of(const Transformer& m) {
  NoGradGuard no_grad;
  const TransformerInput input = testing::tiny_batch(m.config().vocab_size);
  return m.logits(m.hidden_states(input)).data().to_vector<float>();
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A saved adapter of tiny_llama (all linear projections, r 4) and the model that made it.
struct SavedAdapter {
  TempDir dir;
  Transformer model = base_model(testing::tiny_llama());
  SavedAdapter() {
    model.add_lora(lora({"all-linear"}), 1);
    randomize_adapters(model, 2);
    save_adapter(dir.str(), model, "org/base");
  }
  std::string weights() const { return dir.file("adapter_model.safetensors"); }
};

TEST(PeftAdapter, LlamaRoundTripGivesIdenticalLogits) {
  SavedAdapter saved;
  SafetensorsFile st = SafetensorsFile::open(saved.weights());
  EXPECT_EQ(st.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  ASSERT_EQ(st.names().size(), 2u * 7 * 2);
  const std::vector<std::pair<std::string, Shape>> expected = {
      {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", {4, 16}},
      {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", {16, 4}},
      {"base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight", {8, 4}},
      {"base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight", {8, 4}},
      {"base_model.model.model.layers.0.self_attn.o_proj.lora_A.weight", {4, 16}},
      {"base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight", {24, 4}},
      {"base_model.model.model.layers.1.mlp.up_proj.lora_A.weight", {4, 16}},
      {"base_model.model.model.layers.1.mlp.down_proj.lora_A.weight", {4, 24}},
      {"base_model.model.model.layers.1.mlp.down_proj.lora_B.weight", {16, 4}},
  };
  for (const auto& [name, shape] : expected) {
    ASSERT_TRUE(st.contains(name)) << name;
    EXPECT_EQ(st.info(name).shape, shape) << name;
    EXPECT_EQ(st.info(name).dtype, DType::f32) << name;
  }
  Transformer loaded = base_model(testing::tiny_llama());
  load_adapter(loaded, saved.dir.str());
  EXPECT_EQ(loaded.lora_config().r, 4);
  EXPECT_EQ(loaded.lora_config().alpha, 8.0);
  EXPECT_TRUE(same_bits(logits_of(loaded), logits_of(saved.model)));
  auto want = saved.model.adapter_parameters(), got = loaded.adapter_parameters();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first);
    EXPECT_EQ(got[i].second.data().to_vector<float>(), want[i].second.data().to_vector<float>());
  }
}

TEST(PeftAdapter, Gpt2CAttnIsOneFusedAdapter) {
  TempDir dir;
  Transformer model = base_model(testing::tiny_gpt2());  // d 16, f 32
  model.add_lora(lora({"c_attn", "c_proj", "c_fc"}, 2, 4), 1);
  randomize_adapters(model, 3);
  save_adapter(dir.str(), model);
  SafetensorsFile st = SafetensorsFile::open(dir.file("adapter_model.safetensors"));
  ASSERT_EQ(st.names().size(), 2u * 4 * 2);
  const std::vector<std::pair<std::string, Shape>> expected = {
      {"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight", {2, 16}},
      {"base_model.model.transformer.h.0.attn.c_attn.lora_B.weight", {48, 2}},
      {"base_model.model.transformer.h.0.attn.c_proj.lora_A.weight", {2, 16}},
      {"base_model.model.transformer.h.0.attn.c_proj.lora_B.weight", {16, 2}},
      {"base_model.model.transformer.h.1.mlp.c_fc.lora_A.weight", {2, 16}},
      {"base_model.model.transformer.h.1.mlp.c_fc.lora_B.weight", {32, 2}},
      {"base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight", {2, 32}},
      {"base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight", {16, 2}},
  };
  for (const auto& [name, shape] : expected) {
    ASSERT_TRUE(st.contains(name)) << name;
    EXPECT_EQ(st.info(name).shape, shape) << name;
  }
  rapidjson::Document config;
  config.Parse(test::read_bytes(dir.file("adapter_config.json")).c_str());
  ASSERT_TRUE(config.IsObject());
  EXPECT_TRUE(config["fan_in_fan_out"].GetBool());  // Conv1D
  EXPECT_TRUE(config["base_model_name_or_path"].IsNull());
  Transformer loaded = base_model(testing::tiny_gpt2());
  load_adapter(loaded, dir.str());
  EXPECT_TRUE(same_bits(logits_of(loaded), logits_of(model)));
}

TEST(PeftAdapter, ConfigIsWrittenAsPeftWritesIt) {
  SavedAdapter saved;
  const std::string text = test::read_bytes(saved.dir.file("adapter_config.json"));
  EXPECT_EQ(text.rfind("{\n  \"base_model_name_or_path\": \"org/base\",\n  \"bias\": \"none\",", 0),
            0u)
      << text;
  rapidjson::Document c;
  c.Parse(text.c_str());
  ASSERT_TRUE(c.IsObject()) << text;
  EXPECT_STREQ(c["peft_type"].GetString(), "LORA");
  EXPECT_TRUE(c["r"].IsInt());
  EXPECT_EQ(c["r"].GetInt(), 4);
  EXPECT_TRUE(c["lora_alpha"].IsInt());  // an integral alpha is written as PEFT's int
  EXPECT_EQ(c["lora_alpha"].GetInt(), 8);
  EXPECT_EQ(c["lora_dropout"].GetDouble(), 0.0);
  EXPECT_STREQ(c["bias"].GetString(), "none");
  EXPECT_FALSE(c["fan_in_fan_out"].GetBool());
  EXPECT_STREQ(c["task_type"].GetString(), "CAUSAL_LM");
  EXPECT_FALSE(c["use_rslora"].GetBool());
  EXPECT_TRUE(c["modules_to_save"].IsNull());
  EXPECT_TRUE(c["inference_mode"].GetBool());
  std::vector<std::string> targets;
  for (const auto& t : c["target_modules"].GetArray()) targets.emplace_back(t.GetString());
  EXPECT_EQ(targets, (std::vector<std::string>{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                               "up_proj", "down_proj"}));
  // Keys in sorted order.
  std::vector<std::string> keys;
  for (const auto& m : c.GetObject()) keys.emplace_back(m.name.GetString());
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
}

TEST(PeftAdapter, ConfigOfOtherValuesRoundTrips) {
  TempDir dir;
  Transformer model = base_model(testing::tiny_llama());
  LoraConfig lc = lora({"v_proj", "q_proj"}, 2, 3.5);
  lc.dropout = 0.05;
  lc.use_rslora = true;
  model.add_lora(lc, 1);
  save_adapter(dir.str(), model);
  const PeftAdapterConfig back = read_adapter_config(dir.str());
  EXPECT_EQ(back.lora.r, 2);
  EXPECT_EQ(back.lora.alpha, 3.5);
  EXPECT_EQ(back.lora.dropout, 0.05);
  EXPECT_TRUE(back.lora.use_rslora);
  EXPECT_EQ(back.lora.targets, (std::vector<std::string>{"v_proj", "q_proj"}));
  EXPECT_EQ(back.task_type, "CAUSAL_LM");
  EXPECT_EQ(back.base_model_name_or_path, "");
}

TEST(PeftAdapter, ScalarHeadModelsAreSeqClsWithTheHeadSaved) {
  TempDir dir;
  ModelConfig config = testing::tiny_llama();
  config.num_labels = 1;
  Transformer model = base_model(config);
  model.add_lora(lora({"q_proj", "v_proj"}), 1);
  randomize_adapters(model, 4);  // the head's copy too
  save_adapter(dir.str(), model);
  const PeftAdapterConfig back = read_adapter_config(dir.str());
  EXPECT_EQ(back.task_type, "SEQ_CLS");
  EXPECT_EQ(back.lora.modules_to_save, std::vector<std::string>{"score"});
  SafetensorsFile st = SafetensorsFile::open(dir.file("adapter_model.safetensors"));
  ASSERT_TRUE(st.contains("base_model.model.score.weight"));
  EXPECT_EQ(st.info("base_model.model.score.weight").shape, (Shape{1, 16}));

  Transformer loaded = base_model(config);
  load_adapter(loaded, dir.str());
  const TransformerInput input = testing::tiny_batch(config.vocab_size);
  auto scores = [&](const Transformer& t) {
    NoGradGuard no_grad;
    return t.scalar_head(t.hidden_states(input)).data().to_vector<float>();
  };
  EXPECT_TRUE(same_bits(scores(loaded), scores(model)));
  // The same adapter on a language model, and a language model's adapter on a scalar head model.
  Transformer lm = base_model(testing::tiny_llama());
  EXPECT_TRUE(contains(error_of([&] { load_adapter(lm, dir.str()); }), "the model has none"));
  SavedAdapter causal;
  Transformer rm = base_model(config);
  EXPECT_TRUE(contains(error_of([&] { load_adapter(rm, causal.dir.str()); }),
                       "trains no scalar head (task_type CAUSAL_LM)"));
}

TEST(PeftAdapter, ReadsAConfigAsPeftWritesIt) {
  const std::string json = R"({
  "alpha_pattern": {},
  "auto_mapping": null,
  "base_model_name_or_path": "Qwen/Qwen2-0.5B",
  "bias": "none",
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "layer_replication": null,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": 16,
  "lora_dropout": 0.05,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "peft_type": "LORA",
  "r": 8,
  "rank_pattern": {},
  "revision": null,
  "target_modules": ["v_proj", "q_proj"],
  "task_type": "CAUSAL_LM",
  "use_dora": false,
  "use_rslora": false
})";
  const PeftAdapterConfig c = parse_adapter_config(json, "adapter_config.json");
  EXPECT_EQ(c.lora.r, 8);
  EXPECT_EQ(c.lora.alpha, 16.0);
  EXPECT_EQ(c.lora.dropout, 0.05);
  EXPECT_EQ(c.lora.scale(), 2.0);
  EXPECT_EQ(c.lora.targets, (std::vector<std::string>{"v_proj", "q_proj"}));
  EXPECT_EQ(c.base_model_name_or_path, "Qwen/Qwen2-0.5B");
  const PeftAdapterConfig all = parse_adapter_config(
      R"({"peft_type": "LORA", "r": 2, "target_modules": "all-linear"})", "cfg");
  EXPECT_EQ(all.lora.targets, std::vector<std::string>{"all-linear"});
}

TEST(PeftAdapter, RefusesWhatRlaifCannotApplyByName) {
  auto refusal = [](const std::string& extra) {
    return error_of([&] {
      parse_adapter_config(
          R"({"peft_type": "LORA", "r": 4, "target_modules": ["q_proj"])" + extra + "}", "cfg");
    });
  };
  EXPECT_TRUE(contains(error_of([] { parse_adapter_config(R"({"peft_type": "IA3"})", "cfg"); }),
                       "cfg: \"peft_type\" is \"IA3\""));
  // A NUL byte would end the parser's text early, dropping what follows it.
  EXPECT_TRUE(contains(error_of([] {
                         using namespace std::string_literals;
                         parse_adapter_config("{\"peft_type\": \"LORA\"}\0junk"s, "cfg");
                       }),
                       "cfg: a NUL byte at byte 21"));
  EXPECT_TRUE(contains(refusal(R"(, "use_dora": true)"), "cfg: \"use_dora\" asks for DoRA"));
  EXPECT_TRUE(contains(refusal(R"(, "bias": "lora_only")"), "cfg: \"bias\" must be \"none\""));
  EXPECT_TRUE(contains(refusal(R"(, "layers_to_transform": [0])"), "\"layers_to_transform\""));
  EXPECT_TRUE(contains(refusal(R"(, "rank_pattern": {"q_proj": 2})"), "\"rank_pattern\""));
  EXPECT_TRUE(contains(refusal(R"(, "task_type": "SEQ_2_SEQ_LM")"), "\"SEQ_2_SEQ_LM\""));
  EXPECT_TRUE(contains(refusal(R"(, "modules_to_save": ["lm_head"])"), "'lm_head'"));
  EXPECT_TRUE(contains(error_of([] {
                         parse_adapter_config(
                             R"({"peft_type": "LORA", "r": 4, "target_modules": ".*q_proj"})",
                             "cfg");
                       }),
                       "regular expression \".*q_proj\""));
  // A target rlaif does not adapt, named with the file.
  TempDir dir;
  test::write_bytes(dir.file("adapter_config.json"),
                    R"({"peft_type": "LORA", "r": 4, "target_modules": ["q_proj", "lm_head"]})");
  write_safetensors(dir.file("adapter_model.safetensors"), {});
  Transformer model = base_model(testing::tiny_llama());
  const std::string e = error_of([&] { load_adapter(model, dir.str()); });
  EXPECT_TRUE(contains(e, dir.file("adapter_config.json"))) << e;
  EXPECT_TRUE(contains(e, "target module 'lm_head'")) << e;
  EXPECT_FALSE(model.has_adapters());
}

TEST(PeftAdapter, TensorErrorsNameTheFileAndTheTensor) {
  SavedAdapter saved;
  SafetensorsFile st = SafetensorsFile::open(saved.weights());
  NamedTensors all;
  for (const std::string& name : st.names()) all.emplace_back(name, st.tensor(name).clone());
  const std::string q_a = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
  auto rewrite_and_load = [&](const NamedTensors& tensors) {
    write_safetensors(saved.weights(), tensors, {{"format", "pt"}});
    Transformer model = base_model(testing::tiny_llama());
    std::string e = error_of([&] { load_adapter(model, saved.dir.str()); });
    EXPECT_FALSE(model.has_adapters()) << "a failed load leaves no adapters";
    return e;
  };
  NamedTensors missing(all.begin() + 1, all.end());
  std::string e = rewrite_and_load(missing);
  EXPECT_TRUE(contains(e, saved.weights() + ": missing tensor '" + q_a + "'")) << e;

  NamedTensors extra = all;
  extra.emplace_back("base_model.model.lm_head.lora_A.weight", Tensor::zeros({4, 16}, DType::f32));
  e = rewrite_and_load(extra);
  EXPECT_TRUE(contains(e, ": unexpected tensor 'base_model.model.lm_head.lora_A.weight'")) << e;

  NamedTensors misshapen = all;
  misshapen[0].second = Tensor::zeros({5, 16}, DType::f32);
  e = rewrite_and_load(misshapen);
  EXPECT_TRUE(contains(e, "tensor '" + q_a + "' has shape [5, 16] but r = 4")) << e;
  EXPECT_TRUE(contains(e, "imply [4, 16]")) << e;

  std::filesystem::remove(saved.weights());
  test::write_bytes(saved.dir.file("adapter_model.bin"), "pickle");
  Transformer model = base_model(testing::tiny_llama());
  EXPECT_TRUE(contains(error_of([&] { load_adapter(model, saved.dir.str()); }),
                       "adapter_model.bin (a PyTorch pickle)"));
  TempDir empty;
  EXPECT_TRUE(
      contains(error_of([&] { load_adapter(model, empty.str()); }), "has no adapter_config.json"));
}

TEST(PeftAdapter, LoadsAHandWrittenPeftAdapterInBf16) {
  // GPT-2's c_attn in PEFT's layout, B's rows in c_attn's output order q, k, v: a B whose only
  // non-zero rows are the k block moves k_proj alone when merged.
  TempDir dir;
  test::write_bytes(dir.file("adapter_config.json"), R"({"peft_type": "LORA", "r": 2,
      "lora_alpha": 4, "target_modules": ["c_attn"], "fan_in_fan_out": true,
      "task_type": "CAUSAL_LM", "bias": "none"})");
  std::vector<float> a(2 * 16), b(48 * 2, 0.0f);
  for (size_t i = 0; i < a.size(); ++i) a[i] = 0.25f * static_cast<float>(i % 5) - 0.5f;
  for (size_t row = 16; row < 32; ++row) b[row * 2] = b[row * 2 + 1] = 0.5f;
  auto bf16 = [](const std::vector<float>& v, const Shape& shape) {
    Tensor t = Tensor::empty(shape, DType::bf16);
    backend_for(Device::cpu()).cast(Tensor::from_vector(v, shape), t);
    return t;
  };
  write_safetensors(
      dir.file("adapter_model.safetensors"),
      {{"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight", bf16(a, {2, 16})},
       {"base_model.model.transformer.h.0.attn.c_attn.lora_B.weight", bf16(b, {48, 2})},
       {"base_model.model.transformer.h.1.attn.c_attn.lora_A.weight", bf16(a, {2, 16})},
       {"base_model.model.transformer.h.1.attn.c_attn.lora_B.weight", bf16(b, {48, 2})}},
      {{"format", "pt"}});
  Transformer model = base_model(testing::tiny_gpt2());
  const Transformer original = base_model(testing::tiny_gpt2());
  load_adapter(model, dir.str());
  EXPECT_EQ(model.lora_config().scale(), 2.0);
  EXPECT_EQ(model.adapter_parameters()[0].second.data().to_vector<float>(), a);  // exact in bf16
  model.merge_adapters();
  for (const char* p : {"q_proj", "v_proj"}) {
    const std::string name = std::string("transformer.h.0.attn.") + p + ".weight";
    EXPECT_EQ(model.parameter(name).data().to_vector<float>(),
              original.parameter(name).data().to_vector<float>())
        << name;
  }
  // k_proj: W + 2 · B_k A, with B_k all 0.5: every row gains 2 · 0.5 · (a[0, j] + a[1, j]).
  const auto k = model.parameter("transformer.h.0.attn.k_proj.weight").data().to_vector<float>();
  const auto k0 =
      original.parameter("transformer.h.0.attn.k_proj.weight").data().to_vector<float>();
  for (size_t row = 0; row < 16; ++row) {
    for (size_t j = 0; j < 16; ++j) {
      EXPECT_NEAR(k[row * 16 + j], k0[row * 16 + j] + (a[j] + a[16 + j]), 1e-6);
    }
  }
}

}  // namespace
}  // namespace rlaif
