// KTO: the loss's known values and gradients, the reference point, the mismatched pairs, the task
// at the start (loss ½) and with a precomputed reference, unpaired data files, and alignment on
// the letter-sorting task.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "algorithms/kto.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "io/jsonl.h"
#include "runtime/philox.h"
#include "tests/algorithms/preference_test_util.h"

namespace rlaif {
namespace {

using namespace rlaif::testing;
namespace fs = std::filesystem;

Variable vec(std::vector<float> v, bool grad = false) {
  const auto n = static_cast<int64_t>(v.size());
  return Variable(Tensor::from_vector(v, {n}), grad);
}

// β = 0.1, z0 = 2, λ_D = 2, λ_U = 0.5; r = policy − reference:
//   desirable   r = 12:  2·(1 − σ(0.1·(12 − 2)))  = 2·(1 − σ(1))    = 0.537883
//   undesirable r = −8:  0.5·(1 − σ(0.1·(2 + 8))) = 0.5·(1 − σ(1))  = 0.134471
//   desirable   r = 0:   2·(1 − σ(0.1·(0 − 2)))   = 2·(1 − σ(−0.2)) = 1.099668
//   undesirable r = 5:   0.5·(1 − σ(0.1·(2 − 5))) = 0.5·(1 − σ(−0.3)) = 0.287221
TEST(KtoLoss, KnownAnswers) {
  const Variable policy = vec({-10, -20, -5, -7}), ref = vec({-22, -12, -5, -12});
  const std::vector<float> l =
      kto_loss(policy, ref, {1, 0, 1, 0}, 2.0, 0.1, 2.0, 0.5).data().to_vector<float>();
  ASSERT_EQ(l.size(), 4u);
  EXPECT_NEAR(l[0], 0.537883, 1e-5);
  EXPECT_NEAR(l[1], 0.134471, 1e-5);
  EXPECT_NEAR(l[2], 1.099668, 1e-5);
  EXPECT_NEAR(l[3], 0.287221, 1e-5);
  // With weights 1 and z0 = 0 the header's example: 1 − σ(1) for both kinds.
  const std::vector<float> w1 =
      kto_loss(vec({-10, -20}), vec({-20, -10}), {1, 0}, 0.0, 0.1).data().to_vector<float>();
  EXPECT_NEAR(w1[0], 0.268941, 1e-5);
  EXPECT_NEAR(w1[1], 0.268941, 1e-5);
}

TEST(KtoLoss, IsExactlyOneHalfAtTheReference) {
  const Variable p = vec({-10, -3.5, -40, -1});
  for (double beta : {0.01, 0.1, 1.0}) {
    for (float l : kto_loss(p, p, {1, 0, 0, 1}, 0.0, beta).data().to_vector<float>()) {
      EXPECT_EQ(l, 0.5f) << "beta " << beta;
    }
  }
}

TEST(KtoLoss, ReferencePointIsTheClampedMeanLogRatio) {
  EXPECT_DOUBLE_EQ(kto_reference_point({-10, -8}, {-12, -11}), 2.5);  // mean(2, 3)
  EXPECT_DOUBLE_EQ(kto_reference_point({-10, -8}, {-9, -8}), 0.0);    // mean −0.5, clamped
  EXPECT_DOUBLE_EQ(kto_reference_point({}, {}), 0.0);
  EXPECT_THROW(kto_reference_point({-1}, {}), Error);
}

TEST(KtoLoss, GradcheckAndRejectsBadSettings) {
  std::vector<Variable> inputs;
  for (uint64_t k = 0; k < 2; ++k) {
    std::vector<float> v;
    for (uint64_t i = 0; i < 6; ++i) v.push_back(-30.0f + 29.0f * philox_uniform(41 + k, i));
    inputs.push_back(vec(v, true));
  }
  GradcheckResult r = gradcheck(
      [](const std::vector<Variable>& x) {
        return kto_loss(x[0], x[1], {1, 0, 0, 1, 1, 0}, 1.5, 0.3, 1.3, 0.7);
      },
      inputs);
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_EQ(r.checked, 12);
  const Variable x = vec({-1, -2});
  EXPECT_THROW(kto_loss(x, x, {1}, 0.0, 0.1), Error);  // two log-probs, one label
  EXPECT_THROW(kto_loss(x, x, {1, 0}, 0.0, 0.0), Error);
  EXPECT_THROW(kto_loss(x, x, {1, 0}, 0.0, 0.1, -1.0), Error);
}

// The tiny pairs unpaired as TRL unpairs them: chosen answers desirable, then rejected ones.
std::vector<KtoExample> tiny_examples(int64_t max_length = 16) {
  std::vector<KtoExample> out;
  for (bool desirable : {true, false}) {
    for (const TokenizedPair& p : preference_tiny_pairs()) {
      out.push_back({desirable ? p.chosen : p.rejected, {}, desirable});
    }
  }
  pair_mismatched(out, max_length);
  return out;
}

TEST(Kto, MismatchedPairsTakeThePreviousCompletion) {
  const std::vector<KtoExample> e = tiny_examples();
  ASSERT_EQ(e.size(), 6u);
  for (size_t i = 0; i < e.size(); ++i) {
    EXPECT_EQ(e[i].mismatched.prompt, e[i].example.prompt) << i;
    EXPECT_EQ(e[i].mismatched.completion, e[(i + 5) % 6].example.completion) << i;
  }
  // Example 2's prompt has 5 tokens: with max_length 7 the borrowed 4-token completion of
  // example 1 keeps its first 2.
  const std::vector<KtoExample> cut = tiny_examples(7);
  EXPECT_EQ(cut[2].mismatched.completion, (std::vector<int32_t>{11, 12}));
  EXPECT_TRUE(cut[2].mismatched.completion_cut);
  // The reference tables see the example as "chosen" and its mismatched pair as "rejected".
  const std::vector<TokenizedPair> pairs = kto_as_pairs(e);
  EXPECT_EQ(pairs[3].chosen.completion, e[3].example.completion);
  EXPECT_EQ(pairs[3].rejected.completion, e[3].mismatched.completion);
}

double metric(const std::vector<std::pair<std::string, double>>& m, const std::string& name) {
  for (const auto& [k, v] : m) {
    if (k == name) return v;
  }
  ADD_FAILURE() << "no metric " << name;
  return 0.0;
}

TEST(Kto, StartsAtExactlyOneHalfAndMetricsFollowTrl) {
  Transformer policy = tiny_model(3), reference = tiny_model(3);
  policy.set_requires_grad(true);
  KtoOptions o;
  o.batch = 6;
  DpoReference ref;
  ref.model = &reference;
  KtoTask task(policy, ref, tiny_examples(), tiny_examples(), o);
  MicroBatchResult r = task.micro_batch(0, 0, 1.0);
  EXPECT_EQ(r.loss, 0.5);  // every r and z0 are 0: 1 − σ(0) = ½ exactly
  const std::vector<std::string> names = {"rewards/chosen", "rewards/rejected", "rewards/margins",
                                          "logps/chosen",   "logps/rejected",   "kl"};
  ASSERT_EQ(r.metrics.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(r.metrics[i].first, names[i]);
  EXPECT_EQ(metric(r.metrics, "rewards/chosen"), 0.0);
  EXPECT_EQ(metric(r.metrics, "kl"), 0.0);
  EXPECT_LT(metric(r.metrics, "logps/chosen"), 0.0);
  auto eval = task.evaluate();
  ASSERT_EQ(eval.size(), 7u);
  EXPECT_EQ(eval[0].first, "val_loss");
  EXPECT_EQ(eval[0].second, 0.5);
  EXPECT_EQ(eval[6].first, "val_kl");
  // Weights scale each kind's ½: three desirable at 2, three undesirable at 1 → mean 0.75.
  o.desirable_weight = 2.0;
  KtoTask weighted(policy, ref, tiny_examples(), {}, o);
  EXPECT_DOUBLE_EQ(weighted.micro_batch(0, 0, 1.0).loss, 0.75);
}

// The loss through a tiny model whose policy differs from its reference (so z0 > 0 for some
// batches): finite differences of the whole path, log-probs included; z0 is a constant.
TEST(Kto, LossGradientsThroughATinyModel) {
  Transformer policy = tiny_model(3), reference = tiny_model(4);
  for (auto* m : {&policy, &reference}) {
    for (auto& [name, p] : m->parameters()) {
      if (name.ends_with("norm.weight")) continue;
      float* d = p.data().data<float>();
      for (int64_t i = 0; i < p.numel(); ++i) d[i] *= 4.0f;
    }
  }
  const std::vector<KtoExample> examples = tiny_examples();
  std::vector<TokenizedExample> rows, mismatched;
  std::vector<uint8_t> desirable;
  for (const KtoExample& e : examples) {
    rows.push_back(e.example);
    mismatched.push_back(e.mismatched);
    desirable.push_back(e.desirable);
  }
  const SequenceBatch batch = make_batch(rows, policy.device());
  const SequenceBatch kl_batch = make_batch(mismatched, policy.device());
  Variable ref;
  double z0 = 0;
  {
    NoGradGuard no_grad;
    ref = completion_logprobs(reference, batch);
    z0 = kto_reference_point(completion_logprobs(policy, kl_batch).data().to_vector<float>(),
                             completion_logprobs(reference, kl_batch).data().to_vector<float>());
  }
  std::vector<Variable> inputs;
  for (const char* n : {"lm_head.weight", "model.norm.weight", "model.layers.1.mlp.up_proj.weight",
                        "model.embed_tokens.weight"}) {
    inputs.push_back(policy.parameter(n));
  }
  GradcheckOptions opts;
  opts.max_checks_per_input = 16;
  GradcheckResult r = gradcheck(
      [&](const std::vector<Variable>&) {
        return kto_loss(completion_logprobs(policy, batch), ref, desirable, z0, 0.5, 1.0, 1.5);
      },
      inputs, opts);
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_GT(r.checked, 16 * 3);
}

std::vector<double> run_kto(const Transformer& start, DpoReference reference,
                            const std::vector<KtoExample>& train, KtoOptions o, int64_t steps) {
  Transformer policy = clone_model(start);
  policy.set_requires_grad(true);
  KtoTask task(policy, std::move(reference), train, {}, o);
  TrainerOptions t;
  t.out_dir = temp_dir("kto_run");
  t.steps = steps;
  t.schedule.kind = "constant";
  t.schedule.lr = 1e-2;
  rlaif::train(policy, task, t);
  std::vector<double> losses;
  read_jsonl(t.out_dir + "/metrics.jsonl", [&](const rapidjson::Value& r, int64_t) {
    if (std::string(r["kind"].GetString()) == "train") losses.push_back(r["loss"].GetDouble());
  });
  fs::remove_all(t.out_dir);
  return losses;
}

TEST(Kto, PrecomputedReferenceGivesTheLiveReferencesLosses) {
  const Transformer start = tiny_model(5), other = tiny_model(6);
  const std::vector<KtoExample> train = tiny_examples();
  KtoOptions o;
  o.batch = 3;
  DpoReference live;
  live.model = &other;
  DpoReference pre;
  std::tie(pre.train, pre.val) = cached_ref_logprobs(temp_dir("kto_cache") + "/ref.safetensors",
                                                     other, kto_as_pairs(train), {}, 4);
  fs::remove_all(temp_dir("kto_cache"));
  const std::vector<double> a = run_kto(start, live, train, o, 4);
  const std::vector<double> b = run_kto(start, pre, train, o, 4);
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(a[i], b[i], 1e-5) << "step " << i + 1;
  EXPECT_GT(std::fabs(a[3] - a[0]), 1e-3);  // the policy moved
}

TEST(KtoData, ReadsLabelsAndRejectsABadOne) {
  const std::string dir = temp_dir("kto_data");
  fs::create_directories(dir);
  const std::string good = dir + "/good.jsonl", bad = dir + "/bad.jsonl";
  std::ofstream(good)
      << R"({"prompt": "sort: b a", "completion": "a b", "label": true})"
      << "\n"
      << R"({"prompt": [{"role": "user", "content": "hi"}], )"
      << R"("completion": [{"role": "assistant", "content": "yo"}], "label": false})"
      << "\n";
  std::ofstream(bad) << R"({"prompt": "p", "completion": "c", "label": true})"
                     << "\n"
                     << R"({"prompt": "p", "completion": "c", "label": 1})"
                     << "\n";
  const std::vector<LabeledCompletion> e = load_labeled_completions(good);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_TRUE(e[0].desirable);
  EXPECT_EQ(e[0].completion, "a b");
  EXPECT_FALSE(e[1].desirable);
  EXPECT_EQ(e[1].prompt, "hi");
  EXPECT_EQ(e[1].completion, "yo");
  try {
    load_labeled_completions(bad);
    ADD_FAILURE() << "a numeric label was accepted";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("bad.jsonl:2"), std::string::npos) << err.what();
  }
  // Pairs become two examples each: every chosen answer, then every rejected one.
  const std::vector<LabeledCompletion> u =
      unpair_preferences({{"p1", "c1", "r1", 0.0, {}}, {"p2", "c2", "r2", 0.0, {}}});
  ASSERT_EQ(u.size(), 4u);
  EXPECT_EQ(u[1].completion, "c2");
  EXPECT_TRUE(u[1].desirable);
  EXPECT_EQ(u[2].completion, "r1");
  EXPECT_FALSE(u[2].desirable);
  fs::remove_all(dir);
}

// Alignment on the sorting task: a partly trained SFT policy, aligned with KTO on the sorted
// (desirable) and wrong (undesirable) answers of train-split prompts, reference precomputed,
// raises the held-out reward margin and answers more held-out test-split prompts exactly.
TEST(Kto, LearningRaisesExactMatch) {
  auto t0 = std::chrono::steady_clock::now();
  const int64_t sft_steps = 100;
  const Transformer sft = sft_policy(sft_steps, 1);
  const std::vector<std::string> prompts = sort_prompts(200, 99, SortSplit::test);
  const double em_before = exact_match(sft, sort_tokenizer(), sort_template(), prompts);
  TruncationOptions trunc;
  trunc.max_length = sort_policy_config().max_position_embeddings;
  trunc.max_prompt_length = trunc.max_length - 16;
  auto examples = [&](int64_t n, uint64_t seed, SortSplit split) {
    return tokenize_kto_examples(sort_tokenizer(), sort_template(),
                                 unpair_preferences(sort_preference_pairs(n, seed, split)), trunc);
  };
  const std::vector<KtoExample> train = examples(1000, 21, SortSplit::train);
  const std::vector<KtoExample> val = examples(100, 22, SortSplit::test);
  DpoReference reference;
  std::tie(reference.train, reference.val) = cached_ref_logprobs(
      temp_dir("kto_learn") + "/ref.safetensors", sft, kto_as_pairs(train), kto_as_pairs(val), 64);
  Transformer policy = clone_model(sft);
  policy.set_requires_grad(true);
  KtoOptions o;
  o.batch = 16;
  o.seed = 3;
  // λ_D·n_D / (λ_U·n_U) = 4/3, the top of the range the KTO paper recommends: with weights 1 the
  // push on the wrong answers (which share most tokens with the sorted ones) also lowers the
  // sorted answers, and exact match rose less or fell (0.69 -> 0.76 at 100 SFT steps, 0.89 ->
  // 0.83 at 120 with lr 1e-4).
  o.desirable_weight = 1.33;
  KtoTask task(policy, std::move(reference), train, val, o);
  const auto before = task.evaluate();
  TrainerOptions t;
  t.out_dir = temp_dir("kto_learn");
  t.steps = 60;
  t.schedule.kind = "constant";
  t.schedule.lr = 3e-4;
  t.schedule.warmup = 5;
  t.adamw.weight_decay = 0.0;
  t.label = "kto (sort task)";
  TrainResult result = rlaif::train(policy, task, t);
  fs::remove_all(t.out_dir);
  const auto& after = result.last_eval;
  const double em_after = exact_match(policy, sort_tokenizer(), sort_template(), prompts);
  std::printf(
      "kto sort task: exact match %.3f (SFT, %lld steps) -> %.3f; held-out rewards/margins "
      "%.3f -> %.3f, kl %.3f -> %.3f, loss %.4f -> %.4f (%.1f s)\n",
      em_before, static_cast<long long>(sft_steps), em_after, metric(before, "val_rewards/margins"),
      metric(after, "val_rewards/margins"), metric(before, "val_kl"), metric(after, "val_kl"),
      metric(before, "val_loss"), metric(after, "val_loss"),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  // Measured (Release, CPU): exact match 0.690 -> 0.895, rewards/margins 0 -> 1.007, loss
  // 0.5825 -> 0.4725 (other data orders: exact match 0.905 to 0.930). z0 stays 0: the policy
  // lowers the wrong answers, and with them other prompts' answers to each prompt, so the
  // mismatched pairs' mean log-ratio is negative and clamped.
  // At the start (π = π_ref) each loss is ½ times its weight: (1.33 + 1)/2 · ½.
  EXPECT_NEAR(metric(before, "val_loss"), 0.5825, 1e-6);
  EXPECT_GT(metric(after, "val_rewards/margins"), 0.5);
  EXPECT_LT(metric(after, "val_loss"), metric(before, "val_loss") - 0.05);
  EXPECT_LE(1.0 - em_after, 0.6 * (1.0 - em_before) + 0.01)
      << "exact match " << em_before << " -> " << em_after;
}

}  // namespace
}  // namespace rlaif
