// Activation recomputation (Transformer::set_recompute): the same loss and gradients bit for bit,
// checkpoint nodes in the graph, and less peak memory for a forward and backward pass.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_set>
#include <vector>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "runtime/allocator.h"
#include "runtime/philox.h"
#include "tests/model/model_test_util.h"

namespace rlaif {
namespace {

using testing::count_ops;
using testing::tiny_batch;
using testing::tiny_gpt2;
using testing::tiny_llama;
using testing::tiny_targets;

// The bytes of a tensor (any device, any dtype): equal bytes are equal bits.
std::vector<unsigned char> bits_of(const Tensor& t) {
  Tensor host = t.to(Device::cpu());
  const auto* p = static_cast<const unsigned char*>(host.raw_data());
  return {p, p + host.nbytes()};
}

struct StepResult {
  std::vector<unsigned char> loss;
  std::vector<std::vector<unsigned char>> grads;
  int checkpoints = 0;
  bool operator==(const StepResult& o) const { return loss == o.loss && grads == o.grads; }
};

// Two micro-batches of one training step, accumulating into gradients that already hold values
// (as after earlier micro-batches), so the order of every summation shows in the bits.
StepResult train_step(Transformer& model, bool recompute) {
  model.set_recompute(recompute);
  const Device device = model.device();
  uint64_t seed = 1;
  for (auto& [name, p] : model.parameters()) {
    Tensor g = Tensor::empty(p.shape(), DType::f32);
    float* d = g.data<float>();
    for (int64_t i = 0; i < g.numel(); ++i) {
      d[i] = 0.01f * (philox_uniform(seed, static_cast<uint64_t>(i)) - 0.5f);
    }
    Tensor cast = Tensor::empty(p.shape(), p.dtype(), device);
    backend_for(device).cast(g.to(device), cast);
    p.set_grad(cast);
    ++seed;
  }
  const ModelConfig& c = model.config();
  StepResult r;
  for (int micro = 0; micro < 2; ++micro) {
    TransformerInput input = tiny_batch(c.vocab_size);
    // The second without padding segments.
    input = {input.ids.to(device), input.positions.to(device),
             micro == 0 ? input.segment_ids.to(device) : Tensor()};
    Variable loss = mean_all(model.token_losses(input, tiny_targets(c.vocab_size).to(device)));
    r.checkpoints += count_ops(loss, "checkpoint");
    loss.backward();
    std::vector<unsigned char> l = bits_of(loss.data());
    r.loss.insert(r.loss.end(), l.begin(), l.end());
  }
  for (auto& [name, p] : model.parameters()) r.grads.push_back(bits_of(p.grad()));
  return r;
}

void expect_identical_steps(const ModelConfig& config) {
  Transformer model(config);
  model.init_weights(3);
  model.set_requires_grad(true);
  StepResult plain = train_step(model, false);
  StepResult recomputed = train_step(model, true);
  EXPECT_EQ(plain.checkpoints, 0);
  // Per layer: the attention's norm and projections, and the MLP.
  EXPECT_EQ(recomputed.checkpoints, 2 * 2 * config.num_layers);
  EXPECT_EQ(plain.loss, recomputed.loss);
  auto params = model.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(plain.grads[i], recomputed.grads[i]) << params[i].first;
  }
}

TEST(Recompute, Gpt2GradientsAreBitwiseIdentical) {
  expect_identical_steps(tiny_gpt2());
}

TEST(Recompute, LlamaGradientsAreBitwiseIdentical) {
  expect_identical_steps(tiny_llama());
}

TEST(Recompute, Qwen3GradientsAreBitwiseIdentical) {
  expect_identical_steps(testing::tiny_qwen3());
}

TEST(Recompute, Gemma3GradientsAreBitwiseIdentical) {
  expect_identical_steps(testing::tiny_gemma3());
}

// The same on the GPU, in f32 and bf16, where its kernels are deterministic (two plain steps
// agree bit for bit); otherwise only the loss is compared, loosely. Skipped without a device.
void expect_identical_steps_on_gpu(const ModelConfig& config, DType dtype) {
  if (!backend_available(DeviceType::cuda)) GTEST_SKIP() << "this binary has no CUDA backend";
  try {
    backend_for(Device::cuda(0));
  } catch (const Error& e) {
    GTEST_SKIP() << "no CUDA device: " << e.what();
  }
  Transformer model(config, Device::cuda(0), dtype);
  model.init_weights(3);
  model.set_requires_grad(true);
  StepResult plain = train_step(model, false);
  StepResult again = train_step(model, false);
  StepResult recomputed = train_step(model, true);
  EXPECT_EQ(recomputed.checkpoints, 2 * 2 * config.num_layers);
  if (plain == again) {
    EXPECT_TRUE(recomputed == plain) << "recompute changed the bits of a deterministic step";
  } else {
    std::printf("GPU %s step is not deterministic; comparing losses only\n", dtype_name(dtype));
    ASSERT_EQ(plain.loss.size(), 2 * sizeof(float));  // losses are f32 in every dtype
    ASSERT_EQ(recomputed.loss.size(), plain.loss.size());
    float want[2], got[2];
    std::memcpy(want, plain.loss.data(), sizeof want);
    std::memcpy(got, recomputed.loss.data(), sizeof got);
    for (int i = 0; i < 2; ++i) EXPECT_NEAR(got[i], want[i], 1e-3f * std::fabs(want[i]));
  }
}

TEST(Recompute, GpuStepsAreIdentical) {
  for (DType dtype : {DType::f32, DType::bf16}) {
    expect_identical_steps_on_gpu(tiny_gpt2(), dtype);
    expect_identical_steps_on_gpu(tiny_llama(), dtype);
  }
}

TEST(Recompute, NoEffectWithoutGradMode) {
  Transformer model(tiny_llama());
  model.init_weights(3);
  model.set_requires_grad(false);
  model.set_recompute(true);
  const ModelConfig& c = model.config();
  Variable loss =
      mean_all(model.token_losses(tiny_batch(c.vocab_size), tiny_targets(c.vocab_size)));
  EXPECT_FALSE(loss.requires_grad());
}

// Peak CPU tensor bytes above those in use before one forward and backward pass.
size_t peak_bytes_of_step(Transformer& model, bool recompute, const TransformerInput& input,
                          const Tensor& targets, float* loss_out) {
  model.set_recompute(recompute);
  for (auto& [name, p] : model.parameters()) p.zero_grad();
  const size_t base = cpu_bytes_in_use();
  reset_cpu_peak_bytes();
  {
    Variable loss = mean_all(model.token_losses(input, targets));
    loss.backward();
    *loss_out = loss.data().item();
  }
  return cpu_peak_bytes() - base;
}

void expect_less_memory(ModelConfig c) {
  const int64_t B = 4, T = 128;
  c.vocab_size = 256;
  c.hidden_size = 256;
  c.num_layers = 4;
  c.num_heads = c.num_kv_heads = 4;
  c.head_dim = 64;
  c.intermediate_size = c.is_gpt2() ? 1024 : 688;
  c.max_position_embeddings = T;
  Transformer model(c);
  model.init_weights(5);
  model.set_requires_grad(true);
  std::vector<int32_t> ids(static_cast<size_t>(B * T)), pos(ids.size()), targets(ids.size());
  for (int64_t i = 0; i < B * T; ++i) {
    ids[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919) % c.vocab_size);
    targets[static_cast<size_t>(i)] = static_cast<int32_t>((i * 104729 + 3) % c.vocab_size);
    pos[static_cast<size_t>(i)] = static_cast<int32_t>(i % T);
  }
  TransformerInput input{Tensor::from_vector(ids, {B, T}), Tensor::from_vector(pos, {B, T}),
                         Tensor()};
  Tensor y = Tensor::from_vector(targets, {B, T});
  float plain_loss = 0, recomputed_loss = 0;
  // Recompute first, so nothing of the plain pass can linger into its measurement.
  const size_t recomputed = peak_bytes_of_step(model, true, input, y, &recomputed_loss);
  const size_t plain = peak_bytes_of_step(model, false, input, y, &plain_loss);
  std::printf(
      "%s d=%lld, %lld layers, B=%lld, T=%lld: peak above the weights %.1f MiB plain, "
      "%.1f MiB with recompute (%.0f%% less)\n",
      c.model_type.c_str(), static_cast<long long>(c.hidden_size),
      static_cast<long long>(c.num_layers), static_cast<long long>(B), static_cast<long long>(T),
      static_cast<double>(plain) / (1 << 20), static_cast<double>(recomputed) / (1 << 20),
      100.0 * (1.0 - static_cast<double>(recomputed) / static_cast<double>(plain)));
  EXPECT_EQ(plain_loss, recomputed_loss);
  EXPECT_LE(static_cast<double>(recomputed), 0.8 * static_cast<double>(plain));
}

TEST(Recompute, Gpt2PeakMemoryIsLower) {
  expect_less_memory(tiny_gpt2());
}

TEST(Recompute, LlamaPeakMemoryIsLower) {
  expect_less_memory(tiny_llama());
}

}  // namespace
}  // namespace rlaif
