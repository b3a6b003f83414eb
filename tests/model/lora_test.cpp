// LoRA's pieces (model/lora.h): the configuration's scale and checks, PEFT's target matching, the
// adapted linear layer against its equation and finite differences, and dropout's mask against
// the Philox stream it is defined by.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "model/lora.h"
#include "runtime/philox.h"
#include "tests/autograd/test_util.h"
#include "tests/error_of.h"

namespace rlaif {
namespace {

using test::error_of;
using test::expect_gradcheck;
using test::param;
using test::uniform;

TEST(LoraConfig, ScaleIsAlphaOverRankOrOverItsRoot) {
  LoraConfig c;
  c.r = 8;
  c.alpha = 16;
  EXPECT_DOUBLE_EQ(c.scale(), 2.0);
  c.use_rslora = true;
  EXPECT_DOUBLE_EQ(c.scale(), 5.656854249492380195);  // 16 / √8
  c.r = 4;
  EXPECT_DOUBLE_EQ(c.scale(), 8.0);  // 16 / √4
}

TEST(LoraConfig, ValidateNamesWhatIsWrong) {
  LoraConfig c;
  c.r = 0;
  EXPECT_NE(error_of([&] { c.validate("cfg"); }).find("rank r must be at least 1, got 0"),
            std::string::npos);
  c.r = 4;
  c.dropout = 1.0;
  EXPECT_NE(error_of([&] { c.validate("cfg"); }).find("lora_dropout must be in [0, 1), got 1"),
            std::string::npos);
  c.dropout = 0.1;
  c.modules_to_save = {"lm_head"};
  EXPECT_NE(error_of([&] { c.validate("cfg"); }).find("modules_to_save 'lm_head'"),
            std::string::npos);
  c.modules_to_save = {"score", "classifier"};
  c.validate("cfg");  // PEFT's SEQ_CLS pair
}

TEST(LoraTargets, MatchAsPeftMatchesAList) {
  // A path matches a target equal to it or ending with "." + target.
  EXPECT_TRUE(lora_target_matches("transformer.h.0.mlp.c_proj", {"c_proj"}));
  EXPECT_TRUE(lora_target_matches("transformer.h.0.attn.c_proj", {"c_proj"}));
  EXPECT_TRUE(lora_target_matches("transformer.h.0.attn.c_proj", {"attn.c_proj"}));
  EXPECT_FALSE(lora_target_matches("transformer.h.0.mlp.c_proj", {"attn.c_proj"}));
  EXPECT_FALSE(lora_target_matches("model.layers.0.self_attn.q_proj", {"proj"}));  // no dot
  EXPECT_TRUE(
      lora_target_matches("model.layers.0.self_attn.q_proj", {"model.layers.0.self_attn.q_proj"}));
  EXPECT_FALSE(lora_target_matches("model.layers.10.self_attn.q_proj", {"0.self_attn.q_proj"}));
  EXPECT_TRUE(lora_target_matches("model.layers.1.mlp.up_proj", {"v_proj", "up_proj"}));
}

TEST(LoraTargets, FamilyNamesAndDefaults) {
  ModelConfig gpt2;
  gpt2.arch = Arch::gpt2;
  ModelConfig llama;
  EXPECT_EQ(lora_module_names(gpt2), (std::vector<std::string>{"c_attn", "c_proj", "c_fc"}));
  EXPECT_EQ(lora_module_names(llama),
            (std::vector<std::string>{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                      "up_proj", "down_proj"}));
  EXPECT_EQ(default_lora_targets(gpt2), (std::vector<std::string>{"c_attn"}));
  EXPECT_EQ(default_lora_targets(llama), (std::vector<std::string>{"q_proj", "v_proj"}));
}

struct LinearCase {
  Variable x, w, b, a, bm;
};

// x [2, 3, 5], W [4, 5], b [4], A [3, 5], B [4, 3]; B non-zero so that A's gradient is too.
LinearCase linear_case(uint64_t seed) {
  return {param(uniform({2, 3, 5}, seed), "x"), param(uniform({4, 5}, seed + 1), "W"),
          param(uniform({4}, seed + 2), "b"), param(uniform({3, 5}, seed + 3), "A"),
          param(uniform({4, 3}, seed + 4), "B")};
}

TEST(LoraLinear, IsBaseLinearPlusScaledLowRankUpdate) {
  LinearCase c = linear_case(100);
  const float s = 2.5f;
  Variable y = lora_linear(c.x, c.w, c.b, {c.a, c.bm}, s);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 4}));
  // y = W x + b + s · B (A x), in double on the host.
  auto x = c.x.data().to_vector<float>(), w = c.w.data().to_vector<float>();
  auto b = c.b.data().to_vector<float>(), a = c.a.data().to_vector<float>();
  auto bm = c.bm.data().to_vector<float>(), got = y.data().to_vector<float>();
  for (int n = 0; n < 6; ++n) {
    double ax[3];
    for (int k = 0; k < 3; ++k) {
      ax[k] = 0;
      for (int i = 0; i < 5; ++i) ax[k] += double(a[k * 5 + i]) * x[n * 5 + i];
    }
    for (int o = 0; o < 4; ++o) {
      double want = b[o];
      for (int i = 0; i < 5; ++i) want += double(w[o * 5 + i]) * x[n * 5 + i];
      for (int k = 0; k < 3; ++k) want += s * double(bm[o * 3 + k]) * ax[k];
      EXPECT_NEAR(got[n * 4 + o], want, 1e-5) << "row " << n << " out " << o;
    }
  }
  // No adapter: the plain linear layer, bit for bit.
  Variable plain = lora_linear(c.x, c.w, c.b, LoraPair{}, s);
  EXPECT_EQ(plain.data().to_vector<float>(), linear(c.x, c.w, c.b).data().to_vector<float>());
}

TEST(LoraLinear, GradientsMatchFiniteDifferences) {
  LinearCase c = linear_case(200);
  expect_gradcheck(
      [](const std::vector<Variable>& v) {
        return lora_linear(v[0], v[1], v[2], {v[3], v[4]}, 2.0f);
      },
      {c.x, c.w, c.b, c.a, c.bm});
}

TEST(LoraLinear, GradientsWithDropoutMatchFiniteDifferences) {
  // The mask is a pure function of (seed, offset): every evaluation drops the same elements.
  LinearCase c = linear_case(300);
  const LoraDropout d{0.3f, 11, 4096};
  expect_gradcheck(
      [d](const std::vector<Variable>& v) {
        return lora_linear(v[0], v[1], v[2], {v[3], v[4]}, 1.5f, d);
      },
      {c.x, c.w, c.b, c.a, c.bm});
}

TEST(LoraLinear, FrozenBaseGetsNoGradient) {
  LinearCase c = linear_case(400);
  c.w.set_requires_grad(false);
  c.b.set_requires_grad(false);
  Variable y = lora_linear(c.x, c.w, c.b, {c.a, c.bm}, 2.0f);
  sum_all(y).backward();
  EXPECT_FALSE(c.w.grad().defined());
  EXPECT_FALSE(c.b.grad().defined());
  ASSERT_TRUE(c.a.grad().defined());
  ASSERT_TRUE(c.bm.grad().defined());
  // dB = s · Σ_rows g (A x)ᵀ with g = 1: dB[o][k] = 2 · Σ_n (A x_n)[k], the same for every o.
  auto x = c.x.data().to_vector<float>(), a = c.a.data().to_vector<float>();
  auto db = c.bm.grad().to_vector<float>();
  for (int k = 0; k < 3; ++k) {
    double want = 0;
    for (int n = 0; n < 6; ++n) {
      for (int i = 0; i < 5; ++i) want += double(a[k * 5 + i]) * x[n * 5 + i];
    }
    for (int o = 0; o < 4; ++o) EXPECT_NEAR(db[o * 3 + k], 2.0 * want, 1e-5);
  }
}

TEST(LoraDropout, KeepsTheElementsWhoseUniformIsAtLeastP) {
  const int64_t n = 64 * 64;
  Variable x(Tensor::from_vector(std::vector<float>(n, 3.0f), {64, 64}));
  for (float p : {0.25f, 0.1f, 0.5f}) {
    SCOPED_TRACE(p);
    const uint64_t seed = 7, offset = uint64_t{5} << 40;
    Variable y = lora_dropout(x, {p, seed, offset});
    auto got = y.data().to_vector<float>();
    // p on the 2^-24 grid of the uniforms.
    const double p_grid = std::ceil(double(p) * 16777216.0) / 16777216.0;
    const float kept = 3.0f * static_cast<float>(1.0 / (1.0 - double(p)));
    int64_t kept_count = 0;
    for (int64_t i = 0; i < n; ++i) {
      const bool keep = philox_uniform(seed, offset + static_cast<uint64_t>(i)) >= p_grid;
      ASSERT_EQ(got[static_cast<size_t>(i)], keep ? kept : 0.0f) << "element " << i;
      kept_count += keep;
    }
    // 4096 Bernoulli(1 - p) draws: within 5 standard deviations of the mean.
    const double sd = std::sqrt(n * p * (1 - p));
    EXPECT_NEAR(static_cast<double>(kept_count), n * (1 - p), 5 * sd);
  }
}

TEST(LoraDropout, IsPureInSeedAndOffset) {
  Variable x(uniform({16, 16}, 9));
  const auto a = lora_dropout(x, {0.5f, 1, 0}).data().to_vector<float>();
  EXPECT_EQ(lora_dropout(x, {0.5f, 1, 0}).data().to_vector<float>(), a);
  EXPECT_NE(lora_dropout(x, {0.5f, 2, 0}).data().to_vector<float>(), a);
  EXPECT_NE(lora_dropout(x, {0.5f, 1, 256}).data().to_vector<float>(), a);
}

TEST(LoraDropout, ZeroIsTheIdentityAndOneIsRefused) {
  Variable x(uniform({4, 4}, 10));
  EXPECT_TRUE(lora_dropout(x, {0.0f, 1, 0}).is_same(x));
  EXPECT_NE(error_of([&] {
              lora_dropout(x, {1.0f, 1, 0});
            }).find("p must be in [0, 1)"),
            std::string::npos);
}

TEST(LoraLayerRun, DropoutStreamsAreDisjointPerLayerAndModule) {
  LoraLayerRun run;
  run.dropout = 0.1f;
  run.seed = 3;
  run.layer = 2;
  const LoraDropout q = run.dropout_of(LoraSlot::q), o = run.dropout_of(LoraSlot::o);
  EXPECT_EQ(q.offset, uint64_t{2 * 8 + 0} << 40);
  EXPECT_EQ(o.offset, uint64_t{2 * 8 + 3} << 40);
  EXPECT_EQ(q.seed, 3u);
  EXPECT_FLOAT_EQ(q.p, 0.1f);
}

}  // namespace
}  // namespace rlaif
