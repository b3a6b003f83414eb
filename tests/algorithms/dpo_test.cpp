// DPO: the loss gradient through a tiny model for every variant, the precomputed reference (the
// same losses as a live one; its cache: reference_logprobs_test.cpp), and alignment on the
// letter-sorting task.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <tuple>

#include "algorithms/dpo.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "io/jsonl.h"
#include "tests/algorithms/preference_test_util.h"

namespace rlaif {
namespace {

using namespace rlaif::testing;
namespace fs = std::filesystem;

TEST(Dpo, LossGradientsThroughATinyModel) {
  Transformer policy = tiny_model(3, 4.0f), reference = tiny_model(4, 4.0f);
  const std::vector<TokenizedPair> pairs = preference_tiny_pairs();
  const SequenceBatch batch = make_pair_batch(pairs, {0, 1, 2}, policy.device());
  std::vector<Variable> inputs;
  for (const char* n : {"lm_head.weight", "model.norm.weight", "model.layers.1.mlp.up_proj.weight",
                        "model.layers.0.self_attn.v_proj.weight", "model.embed_tokens.weight"}) {
    inputs.push_back(policy.parameter(n));
  }
  struct Case {
    DpoLoss kind;
    double beta, eps;
  };
  for (Case c : {Case{DpoLoss::sigmoid, 0.5, 0.0}, Case{DpoLoss::sigmoid, 0.5, 0.2},
                 Case{DpoLoss::robust, 0.5, 0.2}, Case{DpoLoss::ipo, 0.5, 0.0},
                 Case{DpoLoss::hinge, 0.05, 0.0}}) {
    const bool average = dpo_uses_average_logprobs(c.kind);
    Variable ref;
    {
      NoGradGuard no_grad;
      ref = completion_logprobs(reference, batch, average);
    }
    // Hinge has a kink at βh = 1: make sure no pair sits near it.
    if (c.kind == DpoLoss::hinge) {
      NoGradGuard no_grad;
      Variable p = completion_logprobs(policy, batch, average);
      std::vector<float> pv = p.data().to_vector<float>(), rv = ref.data().to_vector<float>();
      for (size_t i = 0; i < 3; ++i) {
        const double h = (pv[i] - pv[i + 3]) - (rv[i] - rv[i + 3]);
        ASSERT_GT(std::fabs(1.0 - c.beta * h), 0.05) << "pair " << i << " is at the hinge";
      }
    }
    GradcheckOptions opts;
    opts.max_checks_per_input = 16;
    GradcheckResult r = gradcheck(
        [&](const std::vector<Variable>&) {
          Variable p = completion_logprobs(policy, batch, average);
          return dpo_loss(slice(p, 0, 3), slice(p, 3, 6), slice(ref, 0, 3), slice(ref, 3, 6),
                          c.beta, c.kind, c.eps);
        },
        inputs, opts);
    EXPECT_TRUE(r.ok) << dpo_loss_name(c.kind) << " eps " << c.eps << "\n" << r.report;
    EXPECT_GT(r.checked, 16 * 4);
  }
}

TEST(Dpo, StartsAtLn2AndTrainMetricsFollowTrl) {
  Transformer policy = tiny_model(3, 1.0f), reference = tiny_model(3, 1.0f);
  policy.set_requires_grad(true);
  DpoOptions o;
  o.batch = 3;
  DpoReference ref;
  ref.model = &reference;
  DpoTask task(policy, ref, preference_tiny_pairs(), preference_tiny_pairs(), o);
  MicroBatchResult r = task.micro_batch(0, 0, 1.0);
  EXPECT_NEAR(r.loss, std::log(2.0), 1e-6);  // the policy is the reference
  const std::vector<std::string> names = {"rewards/chosen",     "rewards/rejected",
                                          "rewards/accuracies", "rewards/margins",
                                          "logps/chosen",       "logps/rejected"};
  ASSERT_EQ(r.metrics.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(r.metrics[i].first, names[i]);
  EXPECT_NEAR(r.metrics[0].second, 0.0, 1e-9);
  EXPECT_NEAR(r.metrics[3].second, 0.0, 1e-9);
  EXPECT_EQ(r.metrics[2].second, 0.0);  // equal rewards are no preference
  EXPECT_LT(r.metrics[4].second, 0.0);
  auto eval = task.evaluate();
  ASSERT_EQ(eval.size(), 7u);
  EXPECT_EQ(eval[0].first, "val_loss");
  EXPECT_EQ(eval[4].first, "val_rewards/margins");
  EXPECT_NEAR(eval[0].second, std::log(2.0), 1e-6);
}

// Combined losses at the start (policy = reference): sigmoid gives log 2 and IPO (0 − 1/(2β))²,
// each weighted; sft adds α times the chosen answers' NLL per token, −Σ log π(c) / Σ |c|, here
// recomputed from the logged mean log-prob of the chosen answers and their token counts.
TEST(Dpo, CombinedLossesAddTheirWeightedTerms) {
  Transformer policy = tiny_model(3, 1.0f), reference = tiny_model(3, 1.0f);
  policy.set_requires_grad(true);
  const std::vector<TokenizedPair> pairs = preference_tiny_pairs();
  DpoOptions o;
  o.batch = 3;
  o.beta = 0.1;
  o.loss_weight = 1.0;
  o.more_losses = {{DpoLoss::ipo, 2.0}};
  o.sft_weight = 0.5;
  DpoReference ref;
  ref.model = &reference;
  DpoTask task(policy, ref, pairs, {}, o);
  MicroBatchResult r = task.micro_batch(0, 0, 1.0);
  double mean_chosen_logp = NAN, nll = NAN;
  for (const auto& [name, value] : r.metrics) {
    if (name == "logps/chosen") mean_chosen_logp = value;
    if (name == "nll_loss") nll = value;
  }
  // The micro-batch is all three pairs (batch 3 of 3), in some order: the sums do not care.
  double chosen_tokens = 0;
  for (const TokenizedPair& p : pairs)
    chosen_tokens += static_cast<double>(p.chosen.trained_tokens());
  const double want_nll = -3.0 * mean_chosen_logp / chosen_tokens;
  EXPECT_NEAR(nll, want_nll, 1e-5 * std::fabs(want_nll));
  EXPECT_NEAR(r.loss, std::log(2.0) + 2.0 * 25.0 + 0.5 * want_nll, 1e-4);
  // Without sft the metric is absent and the loss is the weighted DPO terms alone.
  o.sft_weight = 0.0;
  DpoTask plain(policy, ref, pairs, {}, o);
  MicroBatchResult q = plain.micro_batch(0, 0, 1.0);
  EXPECT_NEAR(q.loss, std::log(2.0) + 50.0, 1e-4);
  for (const auto& [name, value] : q.metrics) EXPECT_NE(name, "nll_loss");
}

TEST(Dpo, RejectsATargetTokenOutsideTheVocabulary) {
  // The last token of a sequence is only a target: no embedding lookup sees it, and with a padded
  // vocabulary the loss kernels would accept an id up to the padded width. The task must refuse
  // it up front, naming the pair.
  Transformer policy = tiny_model(3, 1.0f), reference = tiny_model(3, 1.0f);
  DpoReference ref;
  ref.model = &reference;
  const int64_t vocab = policy.config().vocab_size;
  std::vector<TokenizedPair> pairs = preference_tiny_pairs();
  pairs[1].rejected.completion.back() = static_cast<int32_t>(vocab);
  DpoOptions o;
  o.batch = 3;
  try {
    DpoTask task(policy, ref, pairs, {}, o);
    FAIL() << "a token id equal to the vocabulary size was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pair 1 has token " + std::to_string(vocab)),
              std::string::npos)
        << e.what();
  }
  pairs[1].rejected.completion.back() = -1;
  EXPECT_THROW(DpoTask(policy, ref, pairs, {}, o), Error);
  pairs[1].rejected.completion.back() = static_cast<int32_t>(vocab - 1);
  EXPECT_NO_THROW(DpoTask(policy, ref, pairs, {}, o));
}

// Runs `steps` optimizer steps of DPO from `start` and returns (losses per step, final weights).
struct DpoRun {
  std::vector<double> losses;
  std::vector<std::pair<std::string, double>> eval;
  std::vector<float> weights;
};

DpoRun run_dpo(const Transformer& start, DpoReference reference,
               const std::vector<TokenizedPair>& train, const std::vector<TokenizedPair>& val,
               DpoOptions o, int64_t steps, const std::string& name) {
  Transformer policy = clone_model(start);
  policy.set_requires_grad(true);
  DpoTask task(policy, std::move(reference), train, val, o);
  TrainerOptions t;
  t.out_dir = temp_dir(name);
  t.steps = steps;
  t.schedule.kind = "constant";
  t.schedule.lr = 1e-2;
  t.label = name;
  TrainResult result = rlaif::train(policy, task, t);
  DpoRun run;
  read_jsonl(t.out_dir + "/metrics.jsonl", [&](const rapidjson::Value& r, int64_t) {
    if (std::string(r["kind"].GetString()) == "train") run.losses.push_back(r["loss"].GetDouble());
  });
  fs::remove_all(t.out_dir);
  run.eval = result.last_eval;
  for (auto& [n, p] : policy.parameters()) {
    std::vector<float> v = p.data().to_vector<float>();
    run.weights.insert(run.weights.end(), v.begin(), v.end());
  }
  return run;
}

TEST(Dpo, PrecomputedReferenceGivesTheLiveReferencesLosses) {
  const Transformer start = tiny_model(5, 1.0f);
  const Transformer other_ref = tiny_model(6, 1.0f);  // an explicit --ref unlike the policy
  const std::vector<TokenizedPair> pairs = preference_tiny_pairs();
  const std::vector<TokenizedPair> train = {pairs[0], pairs[1], pairs[2], pairs[1]};
  const std::vector<TokenizedPair> val = {pairs[2], pairs[0]};
  for (DpoLoss kind : {DpoLoss::sigmoid, DpoLoss::ipo}) {
    for (const Transformer* reference : {&start, &other_ref}) {
      DpoOptions o;
      o.batch = 2;
      o.loss = kind;
      DpoReference live;
      live.model = reference;
      DpoReference pre;
      std::tie(pre.train, pre.val) = cached_ref_logprobs(
          temp_dir("ref_cache") + "/ref_logprobs.safetensors", *reference, train, val, 3);
      fs::remove_all(temp_dir("ref_cache"));
      DpoRun a = run_dpo(start, live, train, val, o, 4, "dpo_live");
      DpoRun b = run_dpo(start, pre, train, val, o, 4, "dpo_pre");
      ASSERT_EQ(a.losses.size(), 4u);
      ASSERT_EQ(b.losses.size(), 4u);
      for (size_t i = 0; i < 4; ++i) {
        EXPECT_NEAR(a.losses[i], b.losses[i], 1e-5 * std::max(1.0, std::fabs(a.losses[i])))
            << dpo_loss_name(kind) << " step " << i + 1;
      }
      ASSERT_EQ(a.eval.size(), b.eval.size());
      for (size_t i = 0; i < a.eval.size(); ++i) {
        EXPECT_NEAR(a.eval[i].second, b.eval[i].second, 1e-4) << a.eval[i].first;
      }
      double worst = 0;
      for (size_t i = 0; i < a.weights.size(); ++i) {
        worst = std::max(worst, double(std::fabs(a.weights[i] - b.weights[i])));
      }
      EXPECT_LT(worst, 1e-4);
      // The policy moved: the comparison is not of two idle runs.
      EXPECT_GT(std::fabs(a.losses[3] - a.losses[0]), 1e-3) << dpo_loss_name(kind);
    }
  }
}

// Every loss, trained on the tiny pairs from the reference itself (margin 0), separates chosen
// from rejected answers: the held-out implicit-reward margin and accuracy rise.
TEST(Dpo, EveryLossRaisesTheMarginFromTheReference) {
  const Transformer start = tiny_model(5, 1.0f);
  const std::vector<TokenizedPair> pairs = preference_tiny_pairs();
  for (DpoLoss kind :
       {DpoLoss::sigmoid, DpoLoss::robust, DpoLoss::ipo, DpoLoss::hinge, DpoLoss::sigmoid_norm,
        DpoLoss::sppo_hard, DpoLoss::nca_pair, DpoLoss::exo_pair, DpoLoss::apo_zero,
        DpoLoss::apo_down, DpoLoss::bco_pair}) {
    DpoOptions o;
    o.batch = 3;
    o.loss = kind;
    // IPO and sigmoid_norm see per-token averages: a larger β moves them as far in a few steps.
    o.beta = dpo_uses_average_logprobs(kind) ? 1.0 : 0.1;
    DpoReference live;
    live.model = &start;
    DpoRun run = run_dpo(start, live, pairs, pairs, o, 10, "dpo_every_loss");
    double margin = NAN, accuracy = NAN;
    for (const auto& [name, value] : run.eval) {
      if (name == "val_rewards/margins") margin = value;
      if (name == "val_rewards/accuracies") accuracy = value;
    }
    EXPECT_GT(margin, 0.0) << dpo_loss_name(kind);
    EXPECT_EQ(accuracy, 1.0) << dpo_loss_name(kind);
  }
}

double metric(const std::vector<std::pair<std::string, double>>& m, const std::string& name) {
  for (const auto& [k, v] : m) {
    if (k == name) return v;
  }
  ADD_FAILURE() << "no metric " << name;
  return 0.0;
}

// Alignment on the sorting task: a partly trained SFT policy, aligned with DPO on sorted-vs-wrong
// pairs of train-split prompts (reference: the SFT policy, precomputed), prefers the sorted
// answers of held-out test-split prompts by a wider margin and answers more of them exactly.
TEST(Dpo, RaisesTheMarginAndExactMatchBeyondSft) {
  auto t0 = std::chrono::steady_clock::now();
  // 120 SFT steps leave the policy right on 8 to 9 in 10 held-out prompts (the CPU's kernels
  // decide which; the comment below gives both): room to improve, and past
  // the point where DPO's push on the rejected answers (which share their final tokens and EOS
  // with the chosen ones) costs more than it gains: from 60-100 SFT steps the same DPO run
  // lowered exact match (0.16 -> 0.01 at 60 steps, 0.70 -> 0.64 at 100), the known DPO failure
  // of pushing the chosen answers' likelihood down with the rejected ones'.
  const int64_t sft_steps = 120;
  const Transformer sft = sft_policy(sft_steps, 1);
  const std::vector<std::string> prompts = sort_prompts(200, 99, SortSplit::test);
  const double em_before = exact_match(sft, sort_tokenizer(), sort_template(), prompts);
  auto t1 = std::chrono::steady_clock::now();
  const std::vector<TokenizedPair> train = sort_tokenized_pairs(2000, 21, SortSplit::train);
  const std::vector<TokenizedPair> val = sort_tokenized_pairs(200, 22, SortSplit::test);
  DpoReference reference;
  std::tie(reference.train, reference.val) =
      cached_ref_logprobs(temp_dir("dpo_learn") + "/ref_logprobs.safetensors", sft, train, val, 64);
  Transformer policy = clone_model(sft);
  policy.set_requires_grad(true);
  DpoOptions o;
  o.batch = 16;
  o.seed = 3;
  o.beta = 0.1;
  DpoTask task(policy, std::move(reference), train, val, o);
  const auto before = task.evaluate();
  TrainerOptions t;
  t.out_dir = temp_dir("dpo_learn");
  t.steps = 100;
  t.schedule.kind = "constant";
  t.schedule.lr = 1e-4;
  t.schedule.warmup = 5;
  t.adamw.weight_decay = 0.0;
  t.label = "dpo (sort task)";
  TrainResult result = rlaif::train(policy, task, t);
  fs::remove_all(t.out_dir);
  const auto& after = result.last_eval;
  const double em_after = exact_match(policy, sort_tokenizer(), sort_template(), prompts);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  const double sft_seconds = std::chrono::duration<double>(t1 - t0).count();
  auto logp_margin = [](const std::vector<std::pair<std::string, double>>& m) {
    return metric(m, "val_logps/chosen") - metric(m, "val_logps/rejected");
  };
  std::printf(
      "dpo sort task: exact match %.3f (SFT, %lld steps, %.1f s) -> %.3f; held-out "
      "rewards/margins %.3f -> %.3f, accuracies %.3f -> %.3f, log-prob margin %.3f -> "
      "%.3f, loss %.4f -> %.4f (%.1f s)\n",
      em_before, static_cast<long long>(sft_steps), sft_seconds, em_after,
      metric(before, "val_rewards/margins"), metric(after, "val_rewards/margins"),
      metric(before, "val_rewards/accuracies"), metric(after, "val_rewards/accuracies"),
      logp_margin(before), logp_margin(after), metric(before, "val_loss"),
      metric(after, "val_loss"), seconds);
  // Measured (Release, CPU, the same on any thread count) on OpenBLAS's Haswell and Zen kernels:
  // exact match 0.790 -> 0.950, rewards/margins 0 -> 0.839 with accuracies 0.985, log-prob margin
  // 18.2 -> 26.6, loss 0.693 -> 0.381; on its SkylakeX kernels exact match 0.890 -> 0.965,
  // margins 0.847, accuracies 0.980, log-prob margin 18.0 -> 26.5. SFT's exact match depends on
  // the kernels (0.79 to 0.97 seen), so no threshold is a fixed rise in it.
  // The policy starts as the reference, so its reward margins start at 0: DPO must open them.
  EXPECT_GT(metric(after, "val_rewards/margins"), 0.5);
  // ... on nearly every held-out pair (a ranking the SFT policy alone already gets mostly right).
  EXPECT_GT(metric(after, "val_rewards/accuracies"), 0.9);
  // The chosen answers' log-likelihood pulls away from the rejected ones' (by ~8.4 nats).
  EXPECT_GT(logp_margin(after), logp_margin(before) + 5.0);
  // DPO removes at least 40% of the held-out prompts SFT still gets wrong (a bar relative to what
  // is left, so it holds near the ceiling too), with 2 prompts of 200 as slack.
  EXPECT_LE(1.0 - em_after, 0.6 * (1.0 - em_before) + 0.01)
      << "exact match " << em_before << " -> " << em_after;
}

}  // namespace
}  // namespace rlaif
