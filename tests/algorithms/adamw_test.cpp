// AdamW: which parameters decay, parameters without gradients, the master copy for bf16
// parameters, and checkpoint state (a resumed run continues bit for bit; bad state is rejected
// with the offending tensor named).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/adamw.h"
#include "kernels/backend.h"
#include "runtime/philox.h"
#include "tests/support/backends.h"

namespace rlaif {
namespace {

using NamedParams = std::vector<std::pair<std::string, Variable>>;
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

using test::cpu;

Tensor random_f32(const Shape& shape, uint64_t seed) {
  Tensor t = Tensor::empty(shape, DType::f32);
  cpu().random_uniform(t, seed, 0, -1.0f, 1.0f);
  return t;
}

Tensor random_of(const Shape& shape, DType dtype, uint64_t seed) {
  Tensor f = random_f32(shape, seed);
  if (dtype == DType::f32) return f;
  Tensor t = Tensor::empty(shape, dtype);
  cpu().cast(f, t);
  return t;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// Runs fn and expects an Error whose message contains `needle`.
template <typename F>
void expect_error(F fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an Error mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// A small model's worth of parameters: a matrix, a bias, a norm gain and a bf16 matrix (which
// gets a master copy), each from its own seed.
NamedParams make_params() {
  return {{"w", Variable(random_of({4, 3}, DType::f32, 1), true, "w")},
          {"b", Variable(random_of({3}, DType::f32, 2), true, "b")},
          {"ln.g", Variable(random_of({5}, DType::f32, 3), true, "ln.g")},
          {"emb", Variable(random_of({6, 2}, DType::bf16, 4), true, "emb")}};
}

// Deterministic gradients for step k (1-based): the same in every run.
void set_grads(const NamedParams& params, int k) {
  uint64_t seed = 1000 * static_cast<uint64_t>(k);
  for (const auto& [name, p] : params) {
    Variable v = p;
    v.set_grad(random_of(p.shape(), p.dtype(), seed++));
  }
}

TEST(AdamW, WeightDecayOnlyForMatricesAgainstClosedForm) {
  const double lr = 0.1, wd = 0.2;
  Variable w(Tensor::from_vector<float>({1.0f, -2.0f, 3.0f, 0.5f}, {2, 2}), true, "w");
  Variable w3(Tensor::from_vector<float>({4.0f, -1.0f}, {1, 1, 2}), true, "w3");
  Variable b(Tensor::from_vector<float>({1.0f, -2.0f}, {2}), true, "b");
  const Tensor w0 = w.data().clone(), w30 = w3.data().clone(), b0 = b.data().clone();
  AdamWOptions opt;
  opt.weight_decay = wd;
  AdamW adam({{"w", w}, {"w3", w3}, {"b", b}}, opt);
  EXPECT_EQ(adam.weight_decay_of(0), wd);
  EXPECT_EQ(adam.weight_decay_of(1), wd);
  EXPECT_EQ(adam.weight_decay_of(2), 0.0);
  // Zero gradients leave m = v = 0, so the Adam term is 0 / (0 + eps) = 0: what remains is the
  // decay alone, θ_k = θ_0·(1 − lr·wd)^k, evaluated as the kernel does (the factor rounded to
  // f32 once, then one f32 multiply per step).
  const int steps = 3;
  for (int k = 0; k < steps; ++k) {
    for (Variable v : {w, w3, b}) v.set_grad(Tensor::zeros(v.shape(), DType::f32));
    adam.step(lr);
  }
  const float factor = static_cast<float>(1.0 - lr * wd);
  for (const auto& [now, start] : {std::pair{w.data(), w0}, std::pair{w3.data(), w30}}) {
    const std::vector<float> got = now.to_vector<float>(), orig = start.to_vector<float>();
    for (size_t i = 0; i < got.size(); ++i) {
      float want = orig[i];
      for (int k = 0; k < steps; ++k) want *= factor;
      EXPECT_EQ(got[i], want) << i;
      // The closed form in double agrees to f32 precision.
      EXPECT_NEAR(got[i], orig[i] * std::pow(1.0 - 0.1 * 0.2, steps), 2e-6) << i;
    }
  }
  EXPECT_TRUE(bitwise_equal(b.data(), b0)) << "a 1-D bias must not decay";
  EXPECT_EQ(adam.step_count(), steps);
}

TEST(AdamW, FirstStepMovesEachWeightByAboutLr) {
  // Step 1: m̂ = g and v̂ = g², so the update is lr·g / (|g| + eps) ≈ lr·sign(g), after the decay.
  Variable w(Tensor::from_vector<float>({1.0f, 1.0f}, {1, 2}), true, "w");
  Variable b(Tensor::from_vector<float>({1.0f, 1.0f}, {2}), true, "b");
  AdamW adam({{"w", w}, {"b", b}});  // weight_decay 0.1
  w.set_grad(Tensor::from_vector<float>({0.5f, -3.0f}, {1, 2}));
  b.set_grad(Tensor::from_vector<float>({0.5f, -3.0f}, {2}));
  adam.step(0.01);
  const std::vector<float> wv = w.data().to_vector<float>(), bv = b.data().to_vector<float>();
  EXPECT_NEAR(wv[0], 1.0 * (1 - 0.01 * 0.1) - 0.01, 3e-7);
  EXPECT_NEAR(wv[1], 1.0 * (1 - 0.01 * 0.1) + 0.01, 3e-7);
  EXPECT_NEAR(bv[0], 1.0 - 0.01, 3e-7);
  EXPECT_NEAR(bv[1], 1.0 + 0.01, 3e-7);
}

TEST(AdamW, ParametersWithoutGradAreUntouched) {
  NamedParams params = make_params();
  std::vector<Tensor> before;
  for (const auto& [name, p] : params) before.push_back(p.data().clone());
  AdamW adam(params);
  Variable w = params[0].second;
  w.set_grad(random_of(w.shape(), DType::f32, 77));
  adam.step(0.1);
  EXPECT_EQ(adam.step_count(), 1);
  EXPECT_EQ(adam.updated_last_step(), 1);
  EXPECT_FALSE(bitwise_equal(params[0].second.data(), before[0]));
  for (size_t i = 1; i < params.size(); ++i) {
    EXPECT_TRUE(bitwise_equal(params[i].second.data(), before[i])) << params[i].first;
  }
  // Their moments stay zero.
  for (const auto& [name, t] : adam.state()) {
    if (name == "exp_avg.w" || name == "exp_avg_sq.w" || name == "master.emb") continue;
    for (float x : t.to_vector<float>()) ASSERT_EQ(x, 0.0f) << name;
  }
  // No gradients at all: nothing moves, yet the step count advances.
  adam.zero_grad();
  for (const auto& [name, p] : params) EXPECT_FALSE(p.grad().defined()) << name;
  const Tensor w_after = w.data().clone();
  adam.step(0.1);
  EXPECT_EQ(adam.step_count(), 2);
  EXPECT_EQ(adam.updated_last_step(), 0);
  EXPECT_TRUE(bitwise_equal(w.data(), w_after));
}

TEST(AdamW, Bf16ParameterGetsAMasterCopy) {
  NamedParams params = make_params();
  AdamW adam(params);
  const NamedTensors state = adam.state();
  std::vector<std::string> names;
  for (const auto& [name, t] : state) names.push_back(name);
  const std::vector<std::string> want = {"exp_avg.w",    "exp_avg_sq.w",   "exp_avg.b",
                                         "exp_avg_sq.b", "exp_avg.ln.g",   "exp_avg_sq.ln.g",
                                         "exp_avg.emb",  "exp_avg_sq.emb", "master.emb"};
  EXPECT_EQ(names, want);
  for (const auto& [name, t] : state) {
    EXPECT_EQ(t.dtype(), DType::f32) << name;
    EXPECT_TRUE(t.device().is_cpu()) << name;
  }
  // The master starts as the parameter's value, and after steps the parameter is its rounding.
  const Tensor& emb = params[3].second.data();
  Tensor master0 = state.back().second;
  Tensor emb_f32 = Tensor::empty(emb.shape(), DType::f32);
  cpu().cast(emb, emb_f32);
  EXPECT_TRUE(bitwise_equal(master0, emb_f32));
  for (int k = 1; k <= 3; ++k) {
    set_grads(params, k);
    adam.step(1e-3);
  }
  Tensor master = adam.state().back().second;
  Tensor rounded = Tensor::empty(emb.shape(), DType::bf16);
  cpu().cast(master, rounded);
  EXPECT_TRUE(bitwise_equal(emb, rounded));
  // Updates of 1e-3 relative are below bf16's resolution for most weights: the master keeps them.
  EXPECT_FALSE(bitwise_equal(master, master0));
}

TEST(AdamW, StateRoundTripContinuesBitForBit) {
  const double lrs[] = {0.0, 1e-2, 3e-3, 5e-3, 1e-3};  // lrs[k] for step k
  // Run A: four steps straight.
  NamedParams a = make_params();
  AdamW opt_a(a);
  for (int k = 1; k <= 4; ++k) {
    set_grads(a, k);
    opt_a.step(lrs[k]);
  }
  // Run B: two steps, then a checkpoint: the weights and the optimizer state.
  NamedParams b = make_params();
  AdamW opt_b(b);
  for (int k = 1; k <= 2; ++k) {
    set_grads(b, k);
    opt_b.step(lrs[k]);
  }
  const NamedTensors saved = opt_b.state();
  const int64_t saved_steps = opt_b.step_count();
  std::vector<Tensor> saved_weights;
  for (const auto& [name, p] : b) saved_weights.push_back(p.data().clone());
  // Run C: fresh parameters holding the saved weights, a fresh optimizer loading the state.
  NamedParams c = make_params();
  for (size_t i = 0; i < c.size(); ++i) c[i].second.data().copy_from(saved_weights[i]);
  AdamW opt_c(c);
  opt_c.load_state(saved, saved_steps);
  EXPECT_EQ(opt_c.step_count(), 2);
  for (int k = 3; k <= 4; ++k) {
    set_grads(c, k);
    opt_c.step(lrs[k]);
  }
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(bitwise_equal(a[i].second.data(), c[i].second.data())) << a[i].first;
  }
  const NamedTensors sa = opt_a.state(), sc = opt_c.state();
  ASSERT_EQ(sa.size(), sc.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_TRUE(bitwise_equal(sa[i].second, sc[i].second)) << sa[i].first;
  }
}

TEST(AdamW, StateIsASnapshot) {
  NamedParams params = make_params();
  AdamW adam(params);
  set_grads(params, 1);
  adam.step(0.1);
  const NamedTensors before = adam.state();
  const Tensor m0 = before[0].second.clone();
  set_grads(params, 2);
  adam.step(0.1);
  EXPECT_TRUE(bitwise_equal(before[0].second, m0)) << "state() must copy, not alias";
}

TEST(AdamW, LoadStateRejectsBadStateNamingTheTensor) {
  NamedParams params = make_params();
  AdamW adam(params);
  set_grads(params, 1);
  adam.step(0.1);
  const NamedTensors good = adam.state();
  const NamedTensors snapshot = adam.state();

  auto without = [&](const std::string& name) {
    NamedTensors s;
    for (const auto& e : good) {
      if (e.first != name) s.push_back(e);
    }
    return s;
  };
  auto replaced = [&](const std::string& name, Tensor t) {
    NamedTensors s = good;
    for (auto& e : s) {
      if (e.first == name) e.second = t;
    }
    return s;
  };
  expect_error([&] { adam.load_state(without("exp_avg_sq.b"), 5); }, "'exp_avg_sq.b' is missing");
  expect_error([&] { adam.load_state(without("master.emb"), 5); }, "'master.emb' is missing");
  expect_error(
      [&] {
        adam.load_state(replaced("exp_avg.w", Tensor::zeros({3, 4}, DType::f32)), 5);
      },
      "'exp_avg.w'");
  expect_error([&] { adam.load_state(replaced("exp_avg.b", Tensor::zeros({3}, DType::bf16)), 5); },
               "'exp_avg.b'");
  NamedTensors extra = good;
  extra.emplace_back("exp_avg.lm_head", Tensor::zeros({3}, DType::f32));
  expect_error([&] { adam.load_state(extra, 5); }, "unexpected tensor 'exp_avg.lm_head'");
  NamedTensors twice = good;
  twice.push_back(good[0]);
  expect_error([&] { adam.load_state(twice, 5); }, "'exp_avg.w' appears twice");
  expect_error([&] { adam.load_state(good, -1); }, "step count");

  // A rejected load changed nothing.
  EXPECT_EQ(adam.step_count(), 1);
  const NamedTensors after = adam.state();
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(bitwise_equal(after[i].second, snapshot[i].second)) << after[i].first;
  }
}

// The gradient clip_grad_norm would leave: g·scale rounded to f32, then to g's dtype.
Tensor scaled(const Tensor& g, float scale) {
  Tensor f = Tensor::empty(g.shape(), DType::f32);
  cpu().cast(g, f);
  cpu().affine(f, scale, 0.0f, f);
  Tensor out = Tensor::empty(g.shape(), g.dtype());
  cpu().cast(f, out);
  return out;
}

TEST(AdamW, GradScaleIsClippingAppliedAsEachGradientIsRead) {
  // A: step(lr, scale) on the gradients as they are. B: the same gradients scaled first (what
  // clip_grad_norm does in place), then step(lr). Every weight and moment must agree bit for bit,
  // bf16 parameter included, and A's gradients must be left unscaled.
  NamedParams a = make_params(), b = make_params();
  AdamW adam_a(a), adam_b(b);
  const float scales[] = {0.3f, 1.0f, 0.05f};
  for (int k = 1; k <= 3; ++k) {
    set_grads(a, k);
    set_grads(b, k);
    std::vector<Tensor> before;
    for (auto& [name, p] : a) before.push_back(p.grad().clone());
    for (auto& [name, p] : b) {
      Variable v = p;
      v.set_grad(scaled(p.grad(), scales[k - 1]));
    }
    adam_a.step(1e-2, scales[k - 1]);
    adam_b.step(1e-2);
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(bitwise_equal(a[i].second.grad(), before[i])) << a[i].first << " step " << k;
    }
  }
  EXPECT_EQ(adam_a.updated_last_step(), 4);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(bitwise_equal(a[i].second.data(), b[i].second.data())) << a[i].first;
  }
  const NamedTensors sa = adam_a.state(), sb = adam_b.state();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_TRUE(bitwise_equal(sa[i].second, sb[i].second));
  // The moments hold the scaled gradients (m = 0.1·g·scale after the first step), so a scale
  // that was ignored would show in the state compared above.
}

TEST(AdamW, ConstructorAndStepErrors) {
  Variable w(Tensor::zeros({2, 2}, DType::f32), true, "w");
  Variable b(Tensor::zeros({2}, DType::f32), true, "b");
  expect_error([&] { AdamW({{"w", w}, {"w", b}}); }, "two parameters are named 'w'");
  expect_error([&] { AdamW({{"w", w}, {"tied", w}}); }, "'w' and 'tied' are one variable");
  expect_error([&] { AdamW({{"ids", Variable(Tensor::zeros({2}, DType::i32))}}); }, "'ids'");
  expect_error([&] { AdamW({{"none", Variable()}}); }, "'none'");
  AdamWOptions bad;
  bad.beta2 = 1.0;
  expect_error([&] { AdamW({{"w", w}}, bad); }, "beta2");
  bad = AdamWOptions();
  bad.weight_decay = -0.1;
  expect_error([&] { AdamW({{"w", w}}, bad); }, "weight_decay");
  AdamW adam({{"w", w}});
  expect_error([&] { adam.step(std::nan("")); }, "lr");
  expect_error([&] { adam.step(-1.0); }, "lr");
  expect_error([&] { adam.step(1e-3, std::nanf("")); }, "grad_scale");
  EXPECT_EQ(adam.step_count(), 0);
}

}  // namespace
}  // namespace rlaif
