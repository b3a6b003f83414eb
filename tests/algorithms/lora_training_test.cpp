// Training LoRA adapters through the shared loop: an SFT run writes a PEFT adapter directory that
// reloads onto its base with bit-identical outputs, leaves the base untouched, and keeps the
// optimizer state to the adapters; DPO's reference is the same base with the adapters off,
// made without copying a weight.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "algorithms/dpo.h"
#include "algorithms/sft.h"
#include "autograd/grad_mode.h"
#include "io/checkpoint.h"
#include "io/model_dir.h"
#include "io/peft_adapter.h"
#include "runtime/allocator.h"
#include "tests/algorithms/preference_test_util.h"
#include "tests/algorithms/synthetic_sort.h"
#include "tests/support/temp_dir.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;
using namespace rlaif::testing;

using test::temp_dir;

std::vector<float> weights_of(const std::vector<std::pair<std::string, Variable>>& params) {
  std::vector<float> out;
  for (const auto& [name, p] : params) {
    auto w = p.data().to_vector<float>();
    out.insert(out.end(), w.begin(), w.end());
  }
  return out;
}

// Next-token logits of a fixed batch, with gradients off.
std::vector<float> logits_of(const Transformer& model) {
  NoGradGuard no_grad;
  const int64_t B = 2, T = 6;
  std::vector<int32_t> ids, pos;
  for (int64_t i = 0; i < B * T; ++i) {
    ids.push_back(static_cast<int32_t>((7 * i + 3) % model.config().vocab_size));
    pos.push_back(static_cast<int32_t>(i % T));
  }
  TransformerInput input{Tensor::from_vector(ids, {B, T}), Tensor::from_vector(pos, {B, T}),
                         Tensor()};
  return model.logits(model.hidden_states(input)).data().to_vector<float>();
}

LoraConfig all_linear(int64_t r, double dropout) {
  LoraConfig c;
  c.r = r;
  c.alpha = 2.0 * static_cast<double>(r);
  c.dropout = dropout;
  c.targets = {"all-linear"};
  return c;
}

TEST(LoraTraining, SftAdaptersReloadOntoTheBaseWithIdenticalOutputs) {
  const std::string base_dir = temp_dir("base"), out = temp_dir("sft");
  Transformer model = sort_initial_policy(9);
  save_model(base_dir, model);
  const std::vector<float> base_weights = weights_of(model.parameters());
  const std::vector<float> base_logits = logits_of(model);
  model.add_lora(all_linear(4, 0.1), 5);
  model.freeze_base();

  SftTask task(model, sort_tokenized(sort_sft_examples(40, 8)), {}, sort_sft_options(2));
  TrainerOptions t = sort_sft_trainer_options(6, out);
  t.schedule.lr = 1e-2;
  t.save_every = 3;
  t.base_model = base_dir;
  const TrainResult result = train(model, task, t);
  ASSERT_EQ(result.steps_done, 6);

  // The base did not move; the adapters did, and change the outputs.
  EXPECT_EQ(weights_of(model.parameters()), base_weights);
  const std::vector<float> trained_logits = logits_of(model);
  EXPECT_NE(trained_logits, base_logits);

  // The run wrote a PEFT adapter directory, and so did its checkpoint, with the optimizer state
  // of the adapters only: AdamW's two moments per adapter weight.
  EXPECT_TRUE(fs::exists(fs::path(out) / "adapter_model.safetensors"));
  EXPECT_FALSE(fs::exists(fs::path(out) / "model.safetensors"));
  const std::string ckpt = checkpoint_dir(out, 6);
  EXPECT_TRUE(fs::exists(fs::path(ckpt) / "adapter_config.json"));
  EXPECT_FALSE(fs::exists(fs::path(ckpt) / "model.safetensors"));
  int64_t adapter_weights = 0, state_values = 0;
  for (const auto& [name, v] : model.adapter_parameters()) adapter_weights += v.data().numel();
  for (const auto& [name, tensor] : read_trainer_state(ckpt).tensors)
    state_values += tensor.numel();
  EXPECT_EQ(state_values, 2 * adapter_weights);
  EXPECT_EQ(read_adapter_config(out).base_model_name_or_path, base_dir);

  // Base + adapter, loaded afresh, computes exactly what the trained model computes.
  Transformer reloaded = load_model(base_dir);
  load_adapter(reloaded, out);
  EXPECT_EQ(logits_of(reloaded), trained_logits);
  // And resuming the checkpoint into a fresh model restores the same adapters.
  Transformer resumed = load_model(base_dir);
  resumed.add_lora(all_linear(4, 0.1), 77);
  load_checkpoint_weights(resumed, ckpt);
  EXPECT_EQ(logits_of(resumed), trained_logits);
  // A checkpoint of adapters does not resume a full fine-tune, nor adapters of another rank.
  Transformer full = load_model(base_dir);
  EXPECT_THROW(load_checkpoint_weights(full, ckpt), Error);
  Transformer other = load_model(base_dir);
  other.add_lora(all_linear(2, 0.1), 5);
  EXPECT_THROW(load_checkpoint_weights(other, ckpt), Error);
  fs::remove_all(base_dir);
  fs::remove_all(out);
}

TEST(LoraTraining, DpoReferenceIsTheBaseWithAdaptersOffAndNoCopy) {
  Transformer policy(preference_tiny_config());
  policy.init_weights(3);
  Transformer base = clone_model(policy);
  policy.add_lora(all_linear(2, 0.0), 4);
  policy.freeze_base();

  const size_t before = cpu_bytes_in_use();
  Transformer reference = policy;
  reference.set_adapters_enabled(false);
  EXPECT_EQ(cpu_bytes_in_use(), before) << "the reference handle allocated memory";
  EXPECT_EQ(model_hash(reference), model_hash(base));

  DpoOptions o;
  o.batch = 3;
  DpoReference ref;
  ref.model = &reference;
  DpoTask task(policy, ref, preference_tiny_pairs(), preference_tiny_pairs(), o);
  TrainerOptions t;
  t.out_dir = temp_dir("dpo");
  t.steps = 4;
  t.schedule.kind = "constant";
  t.schedule.lr = 1e-2;
  const TrainResult result = train(policy, task, t);
  ASSERT_EQ(result.steps_done, 4);
  // Training moved the policy away from the reference, which is still the base, bit for bit.
  EXPECT_NE(model_hash(policy), model_hash(base));
  EXPECT_EQ(model_hash(reference), model_hash(base));
  EXPECT_EQ(logits_of(reference), logits_of(base));
  EXPECT_NE(logits_of(policy), logits_of(base));
  // At the start (B = 0) the policy is its reference, so DPO's loss is log 2.
  Transformer fresh = clone_model(base);
  fresh.add_lora(all_linear(2, 0.0), 4);
  fresh.freeze_base();
  Transformer fresh_reference = fresh;
  fresh_reference.set_adapters_enabled(false);
  DpoReference fresh_ref;
  fresh_ref.model = &fresh_reference;
  DpoTask first(fresh, fresh_ref, preference_tiny_pairs(), {}, o);
  EXPECT_NEAR(first.micro_batch(0, 0, 1.0).loss, std::log(2.0), 1e-6);
  fs::remove_all(t.out_dir);
}

}  // namespace
}  // namespace rlaif
