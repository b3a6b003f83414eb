// End-to-end parity of the CUDA backend with the CPU reference: the same training step of a small
// model of each family (grouped-query heads, padding segments) gives the same loss, gradient norm
// and gradients on both, LoRA adapters included. Skipped, saying why, where no CUDA device
// is present (the kernels' own conformance suite is tests/kernels/).
//
// Tolerances: f32 on both sides, so differences come from summation order only (cuBLASLt's GEMM
// splits K differently from OpenBLAS; attention reduces in tiles): 1e-4 relative on the loss and
// gradient norm, 2e-3 relative-to-max on each gradient tensor (plus 1e-6 of the largest gradient).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "kernels/backend.h"
#include "tests/model/model_test_util.h"

namespace rlaif::testing {
namespace {

ModelConfig wider(ModelConfig c) {
  c.hidden_size = 64;
  c.head_dim = 64 / c.num_heads;
  c.intermediate_size = 96;
  c.vocab_size = 101;
  c.max_position_embeddings = 32;
  return c;
}

struct Step {
  double loss = 0, grad_norm = 0;
  std::vector<std::pair<std::string, Tensor>> grads;  // host f32
};

TransformerInput to_device(const TransformerInput& in, Device d) {
  return {in.ids.to(d), in.positions.to(d), in.segment_ids.to(d)};
}

Step train_step(Transformer& model, const TransformerInput& input, const Tensor& targets) {
  if (!model.has_adapters()) model.set_requires_grad(true);
  Variable losses =
      model.token_losses(to_device(input, model.device()), targets.to(model.device()));
  Variable loss = mean_all(losses);
  loss.backward();
  Step s;
  s.loss = loss.data().item();
  std::vector<std::pair<std::string, Variable>> trained;
  for (auto& [name, p] : model.parameters()) {
    if (p.requires_grad()) trained.emplace_back(name, p);
  }
  for (auto& [name, p] : model.adapter_parameters()) trained.emplace_back(name, p);
  for (auto& [name, p] : trained) {
    Tensor g = p.grad().to(Device::cpu());
    for (float x : g.to_vector<float>()) s.grad_norm += static_cast<double>(x) * x;
    s.grads.emplace_back(name, g);
  }
  s.grad_norm = std::sqrt(s.grad_norm);
  return s;
}

// With `lora`, both models train adapters over a frozen base (B made non-zero, so every path
// counts, and dropout masks drawn on each device from the same Philox stream).
void expect_parity(ModelConfig config, const LoraConfig* lora = nullptr) {
  std::string why;
  if (!cuda_usable(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  Transformer cpu(config, Device::cpu()), gpu(config, Device::cuda(0));
  cpu.init_weights(7);
  for (auto& [name, p] : cpu.parameters()) gpu.parameter(name).data().copy_from(p.data());
  if (lora != nullptr) {
    cpu.add_lora(*lora, 5);
    gpu.add_lora(*lora, 5);
    auto cpu_adapters = cpu.adapter_parameters(), gpu_adapters = gpu.adapter_parameters();
    for (size_t i = 0; i < cpu_adapters.size(); ++i) {
      Tensor w = cpu_adapters[i].second.data();
      if (cpu_adapters[i].first.ends_with("lora_B.weight")) {
        float* d = w.data<float>();
        for (int64_t j = 0; j < w.numel(); ++j)
          d[j] = 0.05f * std::sin(0.7f * static_cast<float>(j + i));
      }
      gpu_adapters[i].second.data().copy_from(w);
    }
    for (Transformer* m : {&cpu, &gpu}) {
      m->freeze_base();
      m->set_lora_dropout_seed(11);
    }
  }

  // A [2, 12] batch with left padding in row 1 (its own segment), targets ignoring the pads.
  std::vector<int32_t> ids, pos, seg, tgt;
  for (int b = 0; b < 2; ++b) {
    const int pad = b == 0 ? 0 : 3;
    for (int t = 0; t < 12; ++t) {
      const bool is_pad = t < pad;
      ids.push_back(is_pad ? 0 : (7 * t + 13 * b + 1) % static_cast<int>(config.vocab_size));
      pos.push_back(is_pad ? 0 : t - pad);
      seg.push_back(is_pad ? -1 : 0);
      tgt.push_back(is_pad ? -100 : (5 * t + 3 * b + 2) % static_cast<int>(config.vocab_size));
    }
  }
  TransformerInput input{Tensor::from_vector(ids, {2, 12}), Tensor::from_vector(pos, {2, 12}),
                         Tensor::from_vector(seg, {2, 12})};
  Tensor targets = Tensor::from_vector(tgt, {2, 12});

  Step want = train_step(cpu, input, targets);
  Step got = train_step(gpu, input, targets);
  EXPECT_TRUE(std::isfinite(got.loss));
  EXPECT_NEAR(got.loss, want.loss, 1e-4 * std::fabs(want.loss)) << "loss";
  EXPECT_NEAR(got.grad_norm, want.grad_norm, 1e-4 * want.grad_norm) << "gradient norm";
  ASSERT_EQ(got.grads.size(), want.grads.size());
  // A floor relative to the largest gradient anywhere: some gradients are zero in exact
  // arithmetic (GPT-2's key bias: adding a constant to every key shifts each row of scores by a
  // constant, which softmax ignores) and hold only rounding noise on either backend.
  double global_max = 0;
  for (const auto& [name, g] : want.grads) {
    for (float x : g.to_vector<float>()) global_max = std::max(global_max, std::fabs(double{x}));
  }
  for (size_t i = 0; i < want.grads.size(); ++i) {
    const auto g = got.grads[i].second.to_vector<float>();
    const auto w = want.grads[i].second.to_vector<float>();
    double max_ref = 1e-12, max_err = 0;
    for (size_t j = 0; j < w.size(); ++j) {
      max_ref = std::max(max_ref, static_cast<double>(std::fabs(w[j])));
      max_err = std::max(max_err, static_cast<double>(std::fabs(g[j] - w[j])));
    }
    EXPECT_LE(max_err, 2e-3 * max_ref + 1e-6 * global_max) << "gradient of " << want.grads[i].first;
  }
}

TEST(GpuParity, Gpt2TrainingStepMatchesCpu) {
  expect_parity(wider(tiny_gpt2()));
}
TEST(GpuParity, LlamaTrainingStepMatchesCpu) {
  expect_parity(wider(tiny_llama()));
}
// The families composed from existing primitives: Qwen3's q/k norms, Gemma 3's (1 + w) norms,
// post-norms, GELU gate and sliding layers' own RoPE base, and Llama 3's rescaled RoPE.
TEST(GpuParity, Qwen3TrainingStepMatchesCpu) {
  expect_parity(wider(tiny_qwen3()));
}
TEST(GpuParity, Gemma3TrainingStepMatchesCpu) {
  ModelConfig c = wider(tiny_gemma3());
  c.sliding_window = 1 << 20;  // the CUDA backend has no sliding-window kernel
  expect_parity(c);
}
// LoRA adapters (linear_low_rank: matmul with alpha and beta = 1) with dropout, on every
// projection of Llama and on GPT-2's fused c_attn.
TEST(GpuParity, LoraTrainingStepMatchesCpu) {
  LoraConfig lora;
  lora.r = 4;
  lora.alpha = 8;
  lora.dropout = 0.1;
  lora.targets = {"all-linear"};
  expect_parity(wider(tiny_llama()), &lora);
  expect_parity(wider(tiny_gpt2()), &lora);
}
TEST(GpuParity, Llama3ScaledRopeTrainingStepMatchesCpu) {
  ModelConfig c = wider(tiny_llama());
  c.rope_scaling = {"llama3", 8.0, 1.0, 4.0, 64};
  expect_parity(c);
}

}  // namespace
}  // namespace rlaif::testing
