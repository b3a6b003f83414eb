// PPO's checkpoints (algorithms/ppo_checkpoint.h): a run resumed from its step-2 checkpoint logs
// and ends with exactly what the uninterrupted run logged and ended with (policy, value model and
// its optimizer, the adaptive KL coefficient β), and a resume with other settings is refused.
#include "algorithms/ppo_checkpoint.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "algorithms/ppo.h"
#include "algorithms/reward.h"
#include "io/checkpoint.h"
#include "io/jsonl.h"
#include "io/model_dir.h"
#include "tests/algorithms/synthetic_sort.h"
#include "tests/support/temp_dir.h"

namespace rlaif {
namespace {

using namespace rlaif::testing;
namespace fs = std::filesystem;
using test::temp_dir;

std::vector<std::string> deterministic_lines(const std::string& metrics) {
  // Every logged number but the timings must repeat exactly.
  std::vector<std::string> out;
  read_jsonl(metrics, [&](const rapidjson::Value& r, int64_t) {
    std::string line;
    for (auto& m : r.GetObject()) {
      const std::string key = m.name.GetString();
      if (key == "elapsed_s" || key.starts_with("time/") ||
          key.find("tokens_per_s") != std::string::npos) {
        continue;
      }
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", m.value.IsNumber() ? m.value.GetDouble() : 0.0);
      line += key + "=" + (m.value.IsString() ? m.value.GetString() : buf) + " ";
    }
    out.push_back(line);
  });
  return out;
}

TEST(PpoCheckpoint, ResumeContinuesBitForBit) {
  // gae (so the value model and its optimizer are in the checkpoint) with the adaptive KL
  // controller (so β is too), 4 steps; then the same run resumed from its step-2 checkpoint.
  const Transformer initial = sort_initial_policy(6);
  Transformer value_init = clone_model(initial);
  ensure_scalar_head(value_init, 6);
  FunctionReward reward(
      [](const std::string& p, const std::string& c) { return positional_accuracy(p, c); });
  const std::vector<std::string> prompts = sort_prompts(12, 31);
  PpoOptions o;
  o.advantage = AdvantageKind::gae;
  o.batch_prompts = 4;
  o.max_new_tokens = 4;
  o.ppo_epochs = 2;
  o.mini_batches = 2;
  o.adaptive_kl_target = 0.01;
  o.adaptive_kl_horizon = 10;  // large moves, so a lost β would show
  o.seed = 5;
  auto run = [&](const std::string& out, const std::string& resume, Transformer& policy,
                 Transformer& value) {
    Transformer reference = clone_model(initial);
    reference.set_requires_grad(false);
    TrainerOptions t;
    t.out_dir = out;
    t.steps = 4;
    t.save_every = 2;
    t.keep = 0;
    t.resume = resume;
    t.schedule.lr = 1e-3;
    t.grad_accum = 2;
    t.settings = {{"seed", "5"}};
    t.identity_keys = {"seed"};
    PpoModels models{&policy, &reference, &value, &sort_tokenizer(), &reward};
    return train_ppo(models, prompts, o, t);
  };
  const std::string full = temp_dir("full"), resumed = temp_dir("resumed");
  Transformer p1 = clone_model(initial), v1 = clone_model(value_init);
  p1.set_requires_grad(true);
  v1.set_requires_grad(true);
  PpoResult a = run(full, "", p1, v1);
  EXPECT_NE(a.kl_coef, o.kl_coef);  // the controller moved β

  Transformer p2 = clone_model(initial), v2 = clone_model(value_init);
  p2.set_requires_grad(true);
  v2.set_requires_grad(true);
  fs::create_directories(resumed);
  fs::copy(full + "/checkpoints", resumed + "/checkpoints", fs::copy_options::recursive);
  fs::remove_all(checkpoint_dir(resumed, 4));
  fs::copy_file(full + "/metrics.jsonl", resumed + "/metrics.jsonl");
  PpoResult b = run(resumed, checkpoint_dir(resumed, 2), p2, v2);
  EXPECT_EQ(b.steps_done, 4);
  EXPECT_EQ(b.kl_coef, a.kl_coef);
  std::vector<std::string> la = deterministic_lines(full + "/metrics.jsonl");
  std::vector<std::string> lb = deterministic_lines(resumed + "/metrics.jsonl");
  ASSERT_EQ(la.size(), 4u);
  for (size_t i = 0; i < la.size() && i < lb.size(); ++i)
    EXPECT_EQ(la[i], lb[i]) << "step " << i + 1;
  for (auto [x, y] : {std::make_pair(&p1, &p2), std::make_pair(&v1, &v2)}) {
    auto pa = x->parameters(), pb = y->parameters();
    for (size_t i = 0; i < pa.size(); ++i) {
      EXPECT_EQ(pa[i].second.data().to_vector<float>(), pb[i].second.data().to_vector<float>())
          << pa[i].first;
    }
  }
  // The final directories: the policy in OUT, the value model in OUT/value_model.
  EXPECT_TRUE(fs::exists(full + "/model.safetensors"));
  Transformer saved_value = load_model(full + "/value_model");
  EXPECT_TRUE(saved_value.has_scalar_head());
  // Another seed is refused.
  Transformer p3 = clone_model(initial), v3 = clone_model(value_init);
  p3.set_requires_grad(true);
  v3.set_requires_grad(true);
  o.seed = 6;
  try {
    Transformer reference = clone_model(initial);
    TrainerOptions t;
    t.out_dir = temp_dir("refused");
    t.steps = 4;
    t.resume = full;
    t.schedule.lr = 1e-3;
    t.settings = {{"seed", "6"}};
    t.identity_keys = {"seed"};
    PpoModels models{&p3, &reference, &v3, &sort_tokenizer(), &reward};
    train_ppo(models, prompts, o, t);
    FAIL() << "a resume with another seed must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--seed"), std::string::npos) << e.what();
  }
  fs::remove_all(full);
  fs::remove_all(resumed);
  fs::remove_all(temp_dir("refused"));
}

}  // namespace
}  // namespace rlaif
