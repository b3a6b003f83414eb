// LoRA adapters on the Transformer: placement and PEFT names, step 0 equal to the base model,
// disabled adapters equal to it bit for bit, merging, freezing, gradients (finite differences and
// activation recomputation), dropout only in grad mode, the scalar head's trained copy, and
// copies sharing one model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "model/kv_cache.h"
#include "tests/error_of.h"
#include "tests/model/model_test_util.h"

namespace rlaif {
namespace {

using test::error_of;
using testing::count_ops;
using testing::lora;
using testing::tiny_batch;
using testing::tiny_gemma3;
using testing::tiny_gpt2;
using testing::tiny_llama;
using testing::tiny_qwen3;
using testing::tiny_targets;

Transformer base_model(const ModelConfig& config) {
  Transformer m(config);
  m.init_weights(3);
  return m;
}

// B (and the head's copy) drawn at random, so the adapters change the model.
void randomize_adapters(Transformer& m, uint64_t seed, float bound = 0.5f) {
  uint64_t k = 0;
  for (auto& [name, v] : m.adapter_parameters()) {
    if (!name.ends_with("lora_A.weight")) {
      backend_for(v.device()).random_uniform(v.data(), seed, (k++) << 32, -bound, bound);
    }
  }
}

std::vector<float> logits_of(const Transformer& m) {
  NoGradGuard no_grad;
  const TransformerInput input = tiny_batch(m.config().vocab_size);
  return m.logits(m.hidden_states(input)).data().to_vector<float>();
}

// Equal bits (not just equal values: -0 and 0 differ).
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

Variable adapter(const Transformer& m, const std::string& name) {
  for (auto& [n, v] : m.adapter_parameters()) {
    if (n == name) return v;
  }
  ADD_FAILURE() << "no adapter tensor " << name;
  return Variable();
}

TEST(LoraModel, LlamaAdaptersHavePeftNamesAndShapesOutsideParameters) {
  Transformer m = base_model(tiny_llama());  // d 16, q 16, kv 8, f 24, 2 layers
  const size_t base_count = m.parameters().size();
  m.add_lora(lora({"all-linear"}), 1);
  auto params = m.adapter_parameters();
  ASSERT_EQ(params.size(), 2u * 7 * 2);
  EXPECT_EQ(params[0].first, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  EXPECT_EQ(params[0].second.shape(), (Shape{4, 16}));
  EXPECT_EQ(params[1].first, "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
  EXPECT_EQ(params[1].second.shape(), (Shape{16, 4}));
  EXPECT_EQ(params[3].first, "base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight");
  EXPECT_EQ(params[3].second.shape(), (Shape{8, 4}));
  EXPECT_EQ(params[8].first, "base_model.model.model.layers.0.mlp.gate_proj.lora_A.weight");
  EXPECT_EQ(params[9].second.shape(), (Shape{24, 4}));
  EXPECT_EQ(params[12].first, "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight");
  EXPECT_EQ(params[12].second.shape(), (Shape{4, 24}));
  EXPECT_EQ(params[27].first, "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
  EXPECT_EQ(params[27].second.shape(), (Shape{16, 4}));
  EXPECT_EQ(m.parameters().size(), base_count);
  for (auto& [name, v] : m.parameters()) EXPECT_EQ(name.find("lora"), std::string::npos) << name;
  EXPECT_EQ(m.lora_config().targets,
            (std::vector<std::string>{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                      "up_proj", "down_proj"}));
}

TEST(LoraModel, Gpt2CAttnIsOneAdapterAndCProjMatchesBothProjections) {
  Transformer m = base_model(tiny_gpt2());  // d 16, f 32
  m.add_lora(lora({"c_attn", "c_proj"}), 1);
  std::vector<std::string> names;
  for (auto& [n, v] : m.adapter_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
                       "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
                       "base_model.model.transformer.h.0.attn.c_proj.lora_A.weight",
                       "base_model.model.transformer.h.0.attn.c_proj.lora_B.weight",
                       "base_model.model.transformer.h.0.mlp.c_proj.lora_A.weight",
                       "base_model.model.transformer.h.0.mlp.c_proj.lora_B.weight",
                       "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight",
                       "base_model.model.transformer.h.1.attn.c_attn.lora_B.weight",
                       "base_model.model.transformer.h.1.attn.c_proj.lora_A.weight",
                       "base_model.model.transformer.h.1.attn.c_proj.lora_B.weight",
                       "base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight",
                       "base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight"}));
  auto params = m.adapter_parameters();
  EXPECT_EQ(params[0].second.shape(), (Shape{4, 16}));
  EXPECT_EQ(params[1].second.shape(), (Shape{48, 4}));  // [3d, r]
  EXPECT_EQ(params[4].second.shape(), (Shape{4, 32}));  // mlp.c_proj: in = f
  EXPECT_EQ(params[5].second.shape(), (Shape{16, 4}));

  Transformer only_attn = base_model(tiny_gpt2());
  only_attn.add_lora(lora({"attn.c_proj"}), 1);
  EXPECT_EQ(only_attn.adapter_parameters().size(), 2u * 2);
  EXPECT_EQ(only_attn.adapter_parameters()[0].first,
            "base_model.model.transformer.h.0.attn.c_proj.lora_A.weight");
  // A full path adapts one layer only.
  Transformer one_layer = base_model(tiny_llama());
  one_layer.add_lora(lora({"model.layers.1.self_attn.v_proj"}), 1);
  ASSERT_EQ(one_layer.adapter_parameters().size(), 2u);
  EXPECT_EQ(one_layer.adapter_parameters()[0].first,
            "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight");
}

TEST(LoraModel, DefaultTargetsArePefts) {
  Transformer llama = base_model(tiny_llama());
  llama.add_lora(lora({}), 1);
  EXPECT_EQ(llama.lora_config().targets, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(llama.adapter_parameters().size(), 2u * 2 * 2);
  Transformer gpt2 = base_model(tiny_gpt2());
  gpt2.add_lora(lora({}), 1);
  EXPECT_EQ(gpt2.lora_config().targets, (std::vector<std::string>{"c_attn"}));
}

TEST(LoraModel, UnknownTargetsAndSecondAdaptersAreRefused) {
  Transformer m = base_model(tiny_llama());
  std::string e = error_of([&] { m.add_lora(lora({"q_proj", "lm_head"}), 1); });
  EXPECT_NE(e.find("target module 'lm_head' matches no module"), std::string::npos) << e;
  EXPECT_NE(e.find("q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"),
            std::string::npos)
      << e;
  EXPECT_FALSE(m.has_adapters());
  e = error_of([&] { m.add_lora(lora({"c_attn"}), 1); });
  EXPECT_NE(e.find("'c_attn'"), std::string::npos) << e;
  m.add_lora(lora({"q_proj"}), 1);
  e = error_of([&] { m.add_lora(lora({"v_proj"}), 1); });
  EXPECT_NE(e.find("already has adapters"), std::string::npos) << e;
}

TEST(LoraModel, InitialisationIsKaimingUniformAAndZeroB) {
  Transformer m = base_model(tiny_llama());
  m.add_lora(lora({"all-linear"}, 8), 5);
  for (auto& [name, v] : m.adapter_parameters()) {
    auto values = v.data().to_vector<float>();
    if (name.ends_with("lora_B.weight")) {
      for (float x : values) ASSERT_EQ(x, 0.0f) << name;
      continue;
    }
    // U(-1/√in, 1/√in): in the bound, spread over it, and centred.
    const float bound = 1.0f / std::sqrt(static_cast<float>(v.size(1)));
    float lo = 0, hi = 0;
    double mean = 0;
    for (float x : values) {
      ASSERT_LE(std::fabs(x), bound) << name;
      lo = std::min(lo, x);
      hi = std::max(hi, x);
      mean += x / values.size();
    }
    EXPECT_LT(lo, -0.8f * bound) << name;
    EXPECT_GT(hi, 0.8f * bound) << name;
    EXPECT_LT(std::fabs(mean), 0.25 * bound) << name;
  }
  // Seeded: the same seed gives the same A, another seed another; adapters differ.
  Transformer again = base_model(tiny_llama());
  again.add_lora(lora({"all-linear"}, 8), 5);
  Transformer other = base_model(tiny_llama());
  other.add_lora(lora({"all-linear"}, 8), 6);
  auto a0 = m.adapter_parameters()[0].second.data().to_vector<float>();
  EXPECT_EQ(again.adapter_parameters()[0].second.data().to_vector<float>(), a0);
  EXPECT_NE(other.adapter_parameters()[0].second.data().to_vector<float>(), a0);
  EXPECT_NE(m.adapter_parameters()[2].second.data().to_vector<float>(), a0);  // k_proj's A
}

TEST(LoraModel, StepZeroEqualsTheBaseModelExactly) {
  for (const ModelConfig& config : {tiny_llama(), tiny_gpt2(), tiny_gemma3()}) {
    SCOPED_TRACE(config.model_type);
    Transformer m = base_model(config);
    const std::vector<float> base = logits_of(m);
    m.add_lora(lora({"all-linear"}), 7);
    EXPECT_EQ(logits_of(m), base);  // B = 0: each update adds exact zeros
  }
}

TEST(LoraModel, DisabledAdaptersGiveTheBaseLogitsBitwise) {
  for (const ModelConfig& config : {tiny_llama(), tiny_gpt2()}) {
    SCOPED_TRACE(config.model_type);
    Transformer m = base_model(config);
    const std::vector<float> base = logits_of(m);
    Transformer made_before = m;
    m.add_lora(lora({"all-linear"}), 7);
    randomize_adapters(m, 8);
    Transformer reference = m;
    reference.set_adapters_enabled(false);
    EXPECT_TRUE(same_bits(logits_of(reference), base));
    const std::vector<float> adapted = logits_of(m);
    EXPECT_GT(max_abs_diff(adapted, base), 1e-2);
    // Copies share the adapters, whenever made; enabling is per handle.
    EXPECT_TRUE(made_before.has_adapters());
    EXPECT_TRUE(same_bits(logits_of(made_before), adapted));
    EXPECT_TRUE(m.adapters_enabled());
  }
}

TEST(LoraModel, MergedModelMatchesTheAdaptedOne) {
  for (const ModelConfig& config : {tiny_llama(), tiny_gpt2(), tiny_qwen3(), tiny_gemma3()}) {
    SCOPED_TRACE(config.model_type);
    Transformer m = base_model(config);
    const std::vector<float> base = logits_of(m);
    LoraConfig lc = lora({"all-linear"}, 4, 8);
    lc.use_rslora = config.is_gpt2();  // s = 8/2 = 4 instead of 8/4 = 2
    m.add_lora(lc, 7);
    randomize_adapters(m, 9);
    const std::vector<float> adapted = logits_of(m);
    ASSERT_GT(max_abs_diff(adapted, base), 1e-2);
    Transformer copy = m;
    m.merge_adapters();
    EXPECT_FALSE(m.has_adapters());
    EXPECT_FALSE(copy.has_adapters());  // the merge shows through every handle
    const std::vector<float> merged = logits_of(m);
    EXPECT_LT(max_abs_diff(merged, adapted), 1e-5);
    EXPECT_TRUE(same_bits(logits_of(copy), merged));
  }
}

TEST(LoraModel, FreezeBaseLeavesOnlyTheAdaptersTrainable) {
  Transformer m = base_model(tiny_llama());
  m.set_requires_grad(true);
  m.add_lora(lora({"q_proj", "down_proj"}), 1);
  m.freeze_base();
  for (auto& [name, v] : m.parameters()) EXPECT_FALSE(v.requires_grad()) << name;
  auto adapters = m.adapter_parameters();
  ASSERT_EQ(adapters.size(), 2u * 2 * 2);
  for (auto& [name, v] : adapters) EXPECT_TRUE(v.requires_grad()) << name;
}

TEST(LoraModel, BackwardReachesOnlyTheAdaptersWithFiniteDifferenceGradients) {
  for (const ModelConfig& config : {tiny_llama(), tiny_gpt2()}) {
    SCOPED_TRACE(config.model_type);
    Transformer m = base_model(config);
    m.add_lora(lora({"all-linear"}), 7);
    randomize_adapters(m, 10);
    m.freeze_base();
    const TransformerInput input = tiny_batch(config.vocab_size);
    const Tensor targets = tiny_targets(config.vocab_size);
    Variable loss = mean_all(m.token_losses(input, targets));
    loss.backward();
    for (auto& [name, v] : m.parameters()) EXPECT_FALSE(v.grad().defined()) << name;
    for (auto& [name, v] : m.adapter_parameters()) {
      ASSERT_TRUE(v.grad().defined()) << name;
      float largest = 0;
      for (float g : v.grad().to_vector<float>()) largest = std::max(largest, std::fabs(g));
      EXPECT_GT(largest, 1e-4f) << name;
    }
    // Central differences of the per-token losses against the gradients of an attention
    // adapter and an MLP adapter, A and B.
    const std::string layer =
        config.is_gpt2() ? "base_model.model.transformer.h.0." : "base_model.model.model.layers.0.";
    const std::string attn = config.is_gpt2() ? "attn.c_attn" : "self_attn.q_proj";
    const std::string mlp = config.is_gpt2() ? "mlp.c_fc" : "mlp.down_proj";
    std::vector<Variable> checked;
    for (const std::string& module : {attn, mlp}) {
      checked.push_back(adapter(m, layer + module + ".lora_A.weight"));
      checked.push_back(adapter(m, layer + module + ".lora_B.weight"));
    }
    GradcheckOptions opts;
    opts.max_checks_per_input = 12;
    opts.atol = 2e-4;
    GradcheckResult r =
        gradcheck([&](const std::vector<Variable>&) { return m.token_losses(input, targets); },
                  checked, opts);
    EXPECT_TRUE(r.ok) << r.report;
    EXPECT_EQ(r.checked, 4 * 12);
  }
}

// The adapters' gradients of two micro-batches, accumulated; `checkpoints` counts the
// checkpoint nodes of their graphs.
std::vector<std::vector<float>> adapter_grads(Transformer& m, bool recompute, int* checkpoints) {
  m.set_recompute(recompute);
  for (auto& [name, v] : m.adapter_parameters()) v.zero_grad();
  const ModelConfig& c = m.config();
  *checkpoints = 0;
  for (int micro = 0; micro < 2; ++micro) {
    m.set_lora_dropout_seed(100 + micro);
    TransformerInput input = tiny_batch(c.vocab_size);
    if (micro == 1) input.segment_ids = Tensor();
    Variable loss = mean_all(m.token_losses(input, tiny_targets(c.vocab_size)));
    *checkpoints += count_ops(loss, "checkpoint");
    loss.backward();
  }
  std::vector<std::vector<float>> out;
  for (auto& [name, v] : m.adapter_parameters()) out.push_back(v.grad().to_vector<float>());
  return out;
}

TEST(LoraModel, RecomputeGivesTheSameAdapterGradients) {
  for (const ModelConfig& config : {tiny_llama(), tiny_gpt2(), tiny_gemma3()}) {
    for (double dropout : {0.0, 0.2}) {
      SCOPED_TRACE(config.model_type + " dropout " + std::to_string(dropout));
      Transformer m = base_model(config);
      LoraConfig lc = lora({"all-linear"});
      lc.dropout = dropout;
      m.add_lora(lc, 7);
      randomize_adapters(m, 11);
      m.freeze_base();
      int plain_checkpoints = 0, checkpoints = 0;
      const auto plain = adapter_grads(m, false, &plain_checkpoints);
      const auto recomputed = adapter_grads(m, true, &checkpoints);
      EXPECT_EQ(plain_checkpoints, 0);
      // Every block of both micro-batches, the first layer's too: its input needs no gradient
      // (the embedding is frozen), its adapters do.
      EXPECT_EQ(checkpoints, 2 * 2 * config.num_layers);
      auto names = m.adapter_parameters();
      for (size_t i = 0; i < plain.size(); ++i) {
        EXPECT_EQ(plain[i], recomputed[i]) << names[i].first;
      }
      for (auto& [name, v] : m.parameters()) EXPECT_FALSE(v.grad().defined()) << name;
    }
  }
}

TEST(LoraModel, DropoutAppliesOnlyInGradModeAndFollowsItsSeed) {
  Transformer m = base_model(tiny_llama());
  LoraConfig lc = lora({"all-linear"});
  lc.dropout = 0.5;
  m.add_lora(lc, 7);
  randomize_adapters(m, 12);
  m.freeze_base();
  const TransformerInput input = tiny_batch(m.config().vocab_size);
  auto grad_mode_logits = [&] {
    return m.logits(m.hidden_states(input)).data().to_vector<float>();
  };
  const std::vector<float> eval = logits_of(m);  // no grad mode: no dropout
  Transformer no_dropout = base_model(tiny_llama());
  no_dropout.add_lora(lora({"all-linear"}), 7);
  randomize_adapters(no_dropout, 12);
  EXPECT_TRUE(same_bits(eval, logits_of(no_dropout)));
  m.set_lora_dropout_seed(1);
  const std::vector<float> train1 = grad_mode_logits();
  EXPECT_GT(max_abs_diff(train1, eval), 1e-3);
  EXPECT_TRUE(same_bits(grad_mode_logits(), train1));
  m.set_lora_dropout_seed(2);
  EXPECT_GT(max_abs_diff(grad_mode_logits(), train1), 1e-3);
}

TEST(LoraModel, ScalarHeadIsTrainedAsACopy) {
  ModelConfig config = tiny_llama();
  config.num_labels = 1;
  Transformer m = base_model(config);
  m.set_requires_grad(true);
  m.add_lora(lora({"q_proj"}), 1);
  EXPECT_EQ(m.lora_config().modules_to_save, std::vector<std::string>{"score"});
  auto params = m.adapter_parameters();
  ASSERT_EQ(params.back().first, "base_model.model.score.weight");
  Variable copy = params.back().second;
  Variable head = m.parameter("score.weight");
  EXPECT_EQ(copy.shape(), (Shape{1, 16}));
  EXPECT_FALSE(copy.is_same(head));
  EXPECT_EQ(copy.data().to_vector<float>(), head.data().to_vector<float>());
  m.freeze_base();
  EXPECT_TRUE(copy.requires_grad());
  EXPECT_FALSE(head.requires_grad());

  const TransformerInput input = tiny_batch(config.vocab_size);
  auto scores = [&](const Transformer& t) {
    NoGradGuard no_grad;
    return t.scalar_head(t.hidden_states(input)).data().to_vector<float>();
  };
  const std::vector<float> base = scores(m);
  backend_for(Device::cpu()).affine(copy.data(), 2.0f, 0.0f, copy.data());
  Transformer reference = m;
  reference.set_adapters_enabled(false);
  EXPECT_TRUE(same_bits(scores(reference), base));
  const std::vector<float> adapted = scores(m);
  for (size_t i = 0; i < base.size(); ++i) EXPECT_FLOAT_EQ(adapted[i], 2.0f * base[i]);
  m.merge_adapters();
  EXPECT_EQ(head.data().to_vector<float>(), copy.data().to_vector<float>());
  EXPECT_TRUE(same_bits(scores(m), adapted));

  Transformer plain = base_model(tiny_llama());
  LoraConfig with_score = lora({"q_proj"});
  with_score.modules_to_save = {"score"};
  std::string e = error_of([&] { plain.add_lora(with_score, 1); });
  EXPECT_NE(e.find("no scalar head"), std::string::npos) << e;
}

TEST(LoraModel, KvCacheDecodingAppliesTheAdapters) {
  for (const ModelConfig& c : {tiny_llama(), tiny_gpt2()}) {
    SCOPED_TRACE(c.model_type);
    Transformer m = base_model(c);
    LoraConfig lc = lora({"all-linear"});
    lc.dropout = 0.3;  // off without grad mode, so decoding matches the full pass
    m.add_lora(lc, 7);
    randomize_adapters(m, 14);
    NoGradGuard no_grad;
    const std::vector<int32_t> ids = {1, 4, 9, 2, 7, 3};
    const int64_t T = static_cast<int64_t>(ids.size());
    std::vector<int32_t> pos(ids.size());
    for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<int32_t>(i);
    auto input = [&](int64_t begin, int64_t end) {
      std::vector<int32_t> i(ids.begin() + begin, ids.begin() + end),
          p(pos.begin() + begin, pos.begin() + end);
      return TransformerInput{Tensor::from_vector(i, {1, end - begin}),
                              Tensor::from_vector(p, {1, end - begin}), Tensor()};
    };
    const std::vector<float> want =
        m.logits(m.hidden_states(input(0, T))).data().to_vector<float>();
    KVCache cache(c, 1, T, Device::cpu());
    std::vector<float> got =
        m.logits(m.hidden_states(input(0, 3), &cache)).data().to_vector<float>();
    for (int64_t t = 3; t < T; ++t) {
      auto l = m.logits(m.hidden_states(input(t, t + 1), &cache)).data().to_vector<float>();
      got.insert(got.end(), l.begin(), l.end());
    }
    ASSERT_EQ(got.size(), want.size());
    EXPECT_LT(max_abs_diff(got, want), 1e-5);
    Transformer base = base_model(c);
    EXPECT_GT(
        max_abs_diff(base.logits(base.hidden_states(input(0, T))).data().to_vector<float>(), want),
        1e-2);
  }
}

TEST(LoraModel, RemoveAdaptersRestoresTheBaseModel) {
  Transformer m = base_model(tiny_gpt2());
  const std::vector<float> base = logits_of(m);
  m.add_lora(lora({"c_attn", "c_fc"}), 7);
  randomize_adapters(m, 13);
  m.remove_adapters();
  EXPECT_FALSE(m.has_adapters());
  EXPECT_TRUE(m.adapter_parameters().empty());
  EXPECT_TRUE(same_bits(logits_of(m), base));
}

}  // namespace
}  // namespace rlaif
