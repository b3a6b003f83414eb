// LoRA training against an independent reference: PyTorch, in float64, trained a PEFT adapter on
// a small Llama and a small GPT-2 for five AdamW steps with gradient clipping, the base frozen
// (tools/golden/make_lora_goldens.py, run once; tests/data/lora_goldens). rlaif loads the base
// model and the adapter directory as a user would, trains only the adapters with its own AdamW
// and clipping, and must reproduce the logits, the step-0 gradients, every step's loss and the
// final adapter tensors to f32 accuracy; the adapter merged into the base gives the same logits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "algorithms/adamw.h"
#include "algorithms/grad_clip.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "io/model_dir.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "tests/expect_close.h"
#include "tests/support/source_dir.h"

namespace rlaif {
namespace {

using test::expect_all_close;

std::string golden_dir(const std::string& family) {
  return test::source_dir() + "/tests/data/lora_goldens/" + family;
}

struct Golden {
  SafetensorsFile file;
  TransformerInput input;
  Tensor targets;
  int64_t counted = 0;  // targets that are not -100
};

Golden read_golden(const std::string& dir) {
  Golden g{SafetensorsFile::open(dir + "/goldens.safetensors"), {}, {}, 0};
  g.input = {g.file.tensor("ids").clone(), g.file.tensor("positions").clone(), Tensor()};
  g.targets = g.file.tensor("targets").clone();
  for (int32_t t : g.targets.to_vector<int32_t>()) g.counted += t != -100;
  return g;
}

Variable mean_loss(Transformer& model, const Golden& g) {
  return scale(sum_all(model.token_losses(g.input, g.targets)),
               1.0f / static_cast<float>(g.counted));
}

std::vector<float> logits_of(Transformer& model, const Golden& g) {
  NoGradGuard no_grad;
  return model.logits(model.hidden_states(g.input)).data().to_vector<float>();
}

class LoraGoldens : public ::testing::TestWithParam<const char*> {};

TEST_P(LoraGoldens, FiveAdamWStepsOfTheAdapterMatchTheReference) {
  const std::string dir = golden_dir(GetParam());
  Transformer model = load_model(dir + "/base");
  load_adapter(model, dir + "/adapter");
  model.freeze_base();
  const Golden g = read_golden(dir);
  expect_all_close(logits_of(model, g), g.file.tensor("logits").to_vector<float>(), 2e-5, 2e-5,
                   "logits with the adapter");

  // The reference's settings: constant lr 1e-2, betas (0.9, 0.95), eps 1e-8, weight decay 0.1
  // on every A and B, gradients clipped to a global norm of 1 before each step.
  const std::vector<std::pair<std::string, Variable>> adapters = model.adapter_parameters();
  AdamW optimizer(adapters, AdamWOptions{0.9, 0.95, 1e-8, 0.1});
  for (int step = 0; step < 5; ++step) {
    Variable loss = mean_loss(model, g);
    expect_all_close(loss.data().to_vector<float>(),
                     g.file.tensor("loss.step" + std::to_string(step)).to_vector<float>(), 2e-6,
                     1e-6, "loss before step " + std::to_string(step));
    loss.backward();
    if (step == 0) {
      for (const auto& [name, p] : model.parameters()) {
        EXPECT_FALSE(p.grad().defined()) << "the frozen base weight " << name << " got a gradient";
      }
      for (const auto& [name, p] : adapters) {
        ASSERT_TRUE(g.file.contains("grad." + name)) << "no reference gradient for " << name;
        expect_all_close(p.grad().to_vector<float>(),
                         g.file.tensor("grad." + name).to_vector<float>(), 2e-6, 1e-4,
                         "step-0 gradient of " + name);
      }
    }
    const double norm = global_grad_norm(adapters);
    expect_all_close({static_cast<float>(norm)},
                     g.file.tensor("grad_norm.step" + std::to_string(step)).to_vector<float>(),
                     1e-6, 1e-5, "gradient norm at step " + std::to_string(step));
    optimizer.step(1e-2, static_cast<float>(clip_factor(norm, 1.0)));
    for (auto [name, p] : adapters) p.zero_grad();
  }
  expect_all_close(mean_loss(model, g).data().to_vector<float>(),
                   g.file.tensor("loss.final").to_vector<float>(), 2e-6, 1e-5,
                   "loss after 5 steps");
  int64_t compared = 0;
  for (const auto& [name, p] : adapters) {
    expect_all_close(p.data().to_vector<float>(), g.file.tensor("final." + name).to_vector<float>(),
                     2e-6, 1e-4, "adapter tensor " + name + " after 5 steps");
    ++compared;
  }
  int64_t references = 0;
  for (const std::string& n : g.file.names()) references += n.starts_with("final.");
  EXPECT_EQ(compared, references) << "rlaif and the reference hold different adapter tensors";
}

TEST_P(LoraGoldens, TheMergedModelGivesTheReferenceLogits) {
  const std::string dir = golden_dir(GetParam());
  Transformer model = load_model(dir + "/base");
  load_adapter(model, dir + "/adapter");
  model.merge_adapters();
  ASSERT_FALSE(model.has_adapters());
  const Golden g = read_golden(dir);
  expect_all_close(logits_of(model, g), g.file.tensor("merged.logits").to_vector<float>(), 2e-5,
                   2e-5, "logits of the merged model");
}

INSTANTIATE_TEST_SUITE_P(Families, LoraGoldens, ::testing::Values("llama", "gpt2"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace rlaif
