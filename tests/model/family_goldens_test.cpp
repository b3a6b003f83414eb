// Every Llama-like family against an independent reference: small random-weight models (a head
// size that is not hidden / heads, grouped-query attention, an odd vocabulary) whose logits, loss
// and gradients PyTorch computed in float64 from Hugging Face's modeling equations
// (tools/golden/make_model_goldens.py, run once; tests/data/model_goldens). rlaif loads each
// model directory as a user would and must agree to f32 accuracy; greedy decoding with the KV
// cache must pick what full forwards pick.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "model/generate.h"
#include "tests/expect_close.h"
#include "tests/model/model_test_util.h"

namespace rlaif {
namespace {

using test::expect_all_close;

std::string golden_dir(const std::string& family) {
  return testing::source_dir() + "/tests/data/model_goldens/" + family;
}

class FamilyGoldens : public ::testing::TestWithParam<const char*> {};

TEST_P(FamilyGoldens, LogitsLossAndGradientsMatchTheReference) {
  const std::string dir = golden_dir(GetParam());
  Transformer model = load_model(dir);
  const std::string family = GetParam();
  ASSERT_EQ(model.config().model_type, family.starts_with("llama") ? "llama"
                                       : family == "gemma3"        ? "gemma3_text"
                                                                   : family);
  const SafetensorsFile goldens = SafetensorsFile::open(dir + "/goldens.safetensors");
  const Tensor ids = goldens.tensor("ids"), targets = goldens.tensor("targets");
  // Row 1 starts at a late position, where rope_scaling changes the angles.
  TransformerInput input{ids.clone(), goldens.tensor("positions").clone(), Tensor()};

  {
    NoGradGuard no_grad;
    expect_all_close(model.logits(model.hidden_states(input)).data().to_vector<float>(),
                     goldens.tensor("logits").to_vector<float>(), 2e-5, 2e-5, "logits");
  }

  model.set_requires_grad(true);
  Variable losses = model.token_losses(input, targets.clone());
  int64_t counted = 0;
  for (int32_t t : targets.to_vector<int32_t>()) counted += t != -100;
  Variable loss = scale(sum_all(losses), 1.0f / static_cast<float>(counted));
  expect_all_close(loss.data().to_vector<float>(), goldens.tensor("loss").to_vector<float>(), 1e-6,
                   1e-6, "loss");
  loss.backward();
  int64_t compared = 0;
  for (const auto& [name, p] : model.parameters()) {
    ASSERT_TRUE(goldens.contains("grad." + name)) << "no reference gradient for " << name;
    expect_all_close(p.grad().to_vector<float>(), goldens.tensor("grad." + name).to_vector<float>(),
                     2e-6, 1e-4, "gradient of " + name);
    ++compared;
  }
  int64_t references = 0;
  for (const std::string& n : goldens.names()) references += n.starts_with("grad.");
  EXPECT_EQ(compared, references) << "the model and the reference hold different weights";
}

TEST_P(FamilyGoldens, GreedyDecodingWithTheKvCacheMatchesFullForwards) {
  Transformer model = load_model(golden_dir(GetParam()));
  const std::vector<int32_t> prompt = {5, 17, 3};
  GenerationOptions options;
  options.max_new_tokens = 12;
  options.sampling.temperature = 0;
  const std::vector<int32_t> cached = generate(model, {prompt}, options)[0].tokens;

  NoGradGuard no_grad;
  std::vector<int32_t> sequence = prompt, full;
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    const int64_t T = static_cast<int64_t>(sequence.size());
    std::vector<int32_t> positions(sequence.size());
    for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<int32_t>(i);
    TransformerInput input{Tensor::from_vector(sequence, {1, T}),
                           Tensor::from_vector(positions, {1, T}), Tensor()};
    const std::vector<float> logits =
        model.logits(model.hidden_states(input)).data().to_vector<float>();
    const int64_t V = model.config().vocab_size;
    auto last = logits.begin() + (T - 1) * V;
    const auto next = static_cast<int32_t>(std::max_element(last, last + V) - last);
    full.push_back(next);
    sequence.push_back(next);
  }
  EXPECT_EQ(cached, full);
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyGoldens,
                         ::testing::Values("llama", "qwen2", "qwen3", "llama3", "llama_linear",
                                           "gemma3"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace rlaif
