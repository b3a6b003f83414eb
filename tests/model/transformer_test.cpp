// The transformer: gradients of whole tiny models against finite differences, the KV cache
// against a full forward, and padding that changes nothing.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tests/model/model_test_util.h"

namespace rlaif {
namespace {

using testing::tiny_batch;
using testing::tiny_gemma3;
using testing::tiny_gpt2;
using testing::tiny_llama;
using testing::tiny_qwen3;
using testing::tiny_targets;

void check_model_gradients(const ModelConfig& config, const std::vector<std::string>& names) {
  Transformer model(config);
  model.init_weights(7);
  // Larger weights than GPT-2's init make every path through the model matter to the loss.
  for (auto& [name, p] : model.parameters()) {
    float* d = p.data().data<float>();
    for (int64_t i = 0; i < p.numel(); ++i)
      d[i] *= name.ends_with("norm.weight") || name.find("ln_") != std::string::npos ? 1.0f : 5.0f;
  }
  TransformerInput input = tiny_batch(config.vocab_size);
  Tensor targets = tiny_targets(config.vocab_size);
  std::vector<Variable> inputs;
  for (const auto& n : names) inputs.push_back(model.parameter(n));
  GradcheckOptions opts;
  opts.max_checks_per_input = 24;
  GradcheckResult r =
      gradcheck([&](const std::vector<Variable>&) { return model.token_losses(input, targets); },
                inputs, opts);
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_GT(r.checked, 24 * 3);
}

TEST(Transformer, Gpt2GradientsMatchFiniteDifferences) {
  check_model_gradients(
      tiny_gpt2(),
      {"transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.attn.q_proj.weight",
       "transformer.h.0.attn.v_proj.bias", "transformer.h.1.ln_2.weight",
       "transformer.h.1.mlp.fc_out.bias", "transformer.ln_f.bias"});
}

TEST(Transformer, LlamaGqaUntiedGradientsMatchFiniteDifferences) {
  check_model_gradients(
      tiny_llama(),
      {"model.embed_tokens.weight", "lm_head.weight", "model.layers.0.self_attn.k_proj.weight",
       "model.layers.0.self_attn.q_proj.bias", "model.layers.1.mlp.gate_proj.weight",
       "model.layers.1.input_layernorm.weight", "model.norm.weight"});
}

TEST(Transformer, Qwen3QkNormGradientsMatchFiniteDifferences) {
  check_model_gradients(
      tiny_qwen3(),
      {"model.embed_tokens.weight", "model.layers.0.self_attn.q_norm.weight",
       "model.layers.0.self_attn.k_norm.weight", "model.layers.1.self_attn.q_proj.weight",
       "model.layers.1.self_attn.k_proj.weight", "model.layers.1.self_attn.o_proj.weight"});
}

TEST(Transformer, Gemma3GradientsMatchFiniteDifferences) {
  check_model_gradients(
      tiny_gemma3(),
      {"model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
       "model.layers.0.post_attention_layernorm.weight", "model.layers.0.self_attn.q_norm.weight",
       "model.layers.1.pre_feedforward_layernorm.weight",
       "model.layers.1.post_feedforward_layernorm.weight", "model.layers.1.mlp.gate_proj.weight",
       "model.norm.weight"});
}

TEST(Transformer, ScalarHeadGradients) {
  ModelConfig c = tiny_llama();
  c.num_labels = 1;
  Transformer model(c);
  model.init_weights(3);
  TransformerInput input = tiny_batch(c.vocab_size);
  GradcheckResult r = gradcheck(
      [&](const std::vector<Variable>&) { return model.scalar_head(model.hidden_states(input)); },
      {model.parameter("score.weight"), model.parameter("model.layers.1.mlp.down_proj.weight")});
  EXPECT_TRUE(r.ok) << r.report;
}

TEST(Transformer, LeftPaddingDoesNotChangeRealTokens) {
  for (ModelConfig c : {tiny_gpt2(), tiny_llama(), tiny_qwen3(), tiny_gemma3()}) {
    Transformer model(c);
    model.init_weights(11);
    NoGradGuard no_grad;
    TransformerInput padded = tiny_batch(c.vocab_size);
    // Row 1's three real tokens alone, no padding.
    TransformerInput alone{padded.ids.select(1).slice(2, 5).clone().reshape({1, 3}),
                           padded.positions.select(1).slice(2, 5).clone().reshape({1, 3}),
                           Tensor()};
    std::vector<float> a = model.logits(model.hidden_states(padded)).data().to_vector<float>();
    std::vector<float> b = model.logits(model.hidden_states(alone)).data().to_vector<float>();
    const int64_t V = c.vocab_size;
    for (int64_t t = 0; t < 3; ++t) {
      for (int64_t v = 0; v < V; ++v) {
        ASSERT_NEAR(a[static_cast<size_t>((5 + 2 + t) * V + v)], b[static_cast<size_t>(t * V + v)],
                    1e-5)
            << c.model_type << " token " << t << " logit " << v;
      }
    }
  }
}

TEST(Transformer, KvCacheMatchesFullForward) {
  for (ModelConfig c : {tiny_gpt2(), tiny_llama(), tiny_qwen3(), tiny_gemma3()}) {
    Transformer model(c);
    model.init_weights(5);
    NoGradGuard no_grad;
    std::vector<int32_t> ids = {1, 4, 9, 2, 7, 3, 8};
    const int64_t T = static_cast<int64_t>(ids.size());
    std::vector<int32_t> pos(ids.size());
    for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<int32_t>(i);
    TransformerInput full{Tensor::from_vector(ids, {1, T}), Tensor::from_vector(pos, {1, T}),
                          Tensor()};
    std::vector<float> want = model.logits(model.hidden_states(full)).data().to_vector<float>();
    // Prefill 3 tokens, then decode the rest one by one.
    KVCache cache(c, 1, T, Device::cpu());
    std::vector<float> got;
    auto run = [&](int64_t begin, int64_t end) {
      std::vector<int32_t> i(ids.begin() + begin, ids.begin() + end),
          p(pos.begin() + begin, pos.begin() + end);
      TransformerInput step{Tensor::from_vector(i, {1, end - begin}),
                            Tensor::from_vector(p, {1, end - begin}), Tensor()};
      auto l = model.logits(model.hidden_states(step, &cache)).data().to_vector<float>();
      got.insert(got.end(), l.begin(), l.end());
    };
    run(0, 3);
    for (int64_t t = 3; t < T; ++t) run(t, t + 1);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-5) << c.model_type << " at " << i;
    EXPECT_EQ(cache.length(), T);
    EXPECT_THROW(run(0, 1), Error);  // the cache is full
  }
}

TEST(Transformer, ErrorsNameTheProblem) {
  Transformer model(tiny_llama());
  model.init_weights(1);
  TransformerInput input = tiny_batch(29);
  input.positions = Tensor::zeros({2, 4}, DType::i32);
  EXPECT_THROW(model.hidden_states(input), Error);
  TransformerInput too_long{Tensor::zeros({1, 17}, DType::i32), Tensor::zeros({1, 17}, DType::i32),
                            Tensor()};
  try {
    model.hidden_states(too_long);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("context of 16"), std::string::npos) << e.what();
  }
  EXPECT_THROW(model.parameter("no.such.weight"), Error);
  EXPECT_THROW(model.scalar_head(model.hidden_states(tiny_batch(29))), Error);
}

TEST(Transformer, InitIsDeterministicAndScaled) {
  Transformer a(tiny_gpt2()), b(tiny_gpt2());
  a.init_weights(42);
  b.init_weights(42);
  auto pa = a.parameters(), pb = b.parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].second.data().to_vector<float>(), pb[i].second.data().to_vector<float>());
  }
  auto stddev = [](const Variable& v) {
    double s = 0;
    for (float x : v.data().to_vector<float>()) s += double(x) * x;
    return std::sqrt(s / static_cast<double>(v.numel()));
  };
  EXPECT_NEAR(stddev(a.parameter("transformer.wte.weight")), 0.02, 0.004);
  // Residual projections: 0.02 / sqrt(2 * 2 layers) = 0.01.
  EXPECT_NEAR(stddev(a.parameter("transformer.h.0.mlp.fc_out.weight")), 0.01, 0.002);
  EXPECT_EQ(a.parameter("transformer.h.0.ln_1.weight").data().to_vector<float>()[3], 1.0f);
  EXPECT_EQ(a.parameter("transformer.h.0.attn.q_proj.bias").data().to_vector<float>()[3], 0.0f);
  EXPECT_EQ(static_cast<int64_t>(a.parameters().size()), 4 + 2 * 16);
  int64_t count = 0;
  for (auto& [n, p] : a.parameters()) count += p.numel();
  EXPECT_EQ(count, tiny_gpt2().parameter_count());
}

// Loss, per-token log-probs and every gradient with the head padded to 64 rows and unpadded.
TEST(Transformer, VocabPaddingChangesNoLossLogprobOrGradient) {
  for (ModelConfig c : {tiny_gpt2(), tiny_llama()}) {  // tied (V 23) and untied (V 29) heads
    Transformer model(c);
    model.init_weights(9);
    ASSERT_EQ(model.padded_vocab(), 64);
    ASSERT_TRUE(model.vocab_padding());
    const TransformerInput input = tiny_batch(c.vocab_size);
    const Tensor targets = tiny_targets(c.vocab_size);
    std::vector<int32_t> real = targets.to_vector<int32_t>();  // log-probs take no ignore_index
    for (int32_t& t : real) t = t < 0 ? 0 : t;
    const Tensor real_targets = Tensor::from_vector(real, targets.shape());
    struct Run {
      std::vector<float> losses, logprobs;
      std::vector<std::vector<float>> grads;
    };
    auto run = [&](bool padded) {
      model.set_vocab_padding(padded);
      Run r;
      for (auto& [name, p] : model.parameters()) p.zero_grad();
      Variable losses = model.token_losses(input, targets);
      r.losses = losses.data().to_vector<float>();
      sum_all(losses).backward();
      for (auto& [name, p] : model.parameters()) {
        EXPECT_EQ(p.grad().shape(), p.shape()) << name;
        r.grads.push_back(p.grad().to_vector<float>());
      }
      NoGradGuard no_grad;
      r.logprobs = model.token_logprobs(input, real_targets).data().to_vector<float>();
      return r;
    };
    const Run padded = run(true), plain = run(false);
    auto expect_near = [&](const std::vector<float>& got, const std::vector<float>& want,
                           const std::string& what) {
      ASSERT_EQ(got.size(), want.size()) << what;
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-6 + 1e-6 * std::fabs(want[i])) << what << " [" << i << "]";
      }
    };
    expect_near(padded.losses, plain.losses, c.model_type + " losses");
    expect_near(padded.logprobs, plain.logprobs, c.model_type + " logprobs");
    const auto params = model.parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      expect_near(padded.grads[i], plain.grads[i],
                  c.model_type + " gradient of " + params[i].first);
    }
  }
}

TEST(Transformer, VocabPaddingRoundsUpToAMultipleOf64) {
  ModelConfig c = tiny_llama();
  for (const auto& [vocab, padded] :
       std::vector<std::pair<int64_t, int64_t>>{{128, 128}, {129, 192}, {50257, 50304}}) {
    c.vocab_size = vocab;
    EXPECT_EQ(Transformer(c).padded_vocab(), padded) << "vocabulary " << vocab;
  }
}

}  // namespace
}  // namespace rlaif
