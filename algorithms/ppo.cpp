#include "algorithms/ppo.h"

#include <rapidjson/document.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>

#include "algorithms/adamw.h"
#include "algorithms/grad_clip.h"
#include "algorithms/ppo_losses.h"
#include "algorithms/stop_signals.h"
#include "autograd/ops.h"
#include "io/checkpoint.h"
#include "io/metrics_log.h"
#include "io/model_dir.h"
#include "io/progress.h"
#include "runtime/rng.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;

constexpr const char* kValueModelPrefix = "value_model.";
constexpr const char* kValueOptimizerPrefix = "value_optimizer.";
// Mini-batch orders draw from their own Philox key, apart from the prompt order's.
constexpr uint64_t kMiniBatchSeedSalt = 0x9E3779B97F4A7C15ull;

using Params = std::vector<std::pair<std::string, Variable>>;
using Metrics = std::vector<std::pair<std::string, double>>;

Params trainable(const Transformer* model) {
  Params out;
  if (model == nullptr) return out;
  for (auto& [name, v] : model->parameters()) {
    if (v.requires_grad()) out.emplace_back(name, v);
  }
  return out;
}

// Running means of the update's diagnostics, in first-seen order.
class MeanMetrics {
 public:
  void add(const std::string& name, double value) {
    for (auto& e : entries_) {
      if (e.name == name) {
        e.sum += value;
        e.count += 1;
        return;
      }
    }
    entries_.push_back({name, value, 1});
  }
  Metrics means() const {
    Metrics out;
    for (const auto& e : entries_) out.emplace_back(e.name, e.sum / e.count);
    return out;
  }

 private:
  struct Entry {
    std::string name;
    double sum;
    double count;
  };
  std::vector<Entry> entries_;
};

struct Optimizers {
  AdamW* policy = nullptr;
  AdamW* value = nullptr;  // null without a value model
  Params all;              // the parameters of both, for joint clipping
};

struct UpdateResult {
  Metrics metrics;
  int64_t tokens = 0;  // real tokens through forward and backward
  double seconds = 0.0;
};

// ppo_epochs × mini_batches updates on one rollout.
UpdateResult update(const PpoModels& models, Optimizers& opt, const Rollout& rollout,
                    const PpoOptions& o, const TrainerOptions& trainer, double lr, double kl_coef,
                    const std::string& last_checkpoint) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t R = static_cast<int64_t>(rollout.samples.size());
  const int64_t per_mini = R / o.mini_batches;
  const int64_t A = trainer.grad_accum;
  RLAIF_CHECK(per_mini % A == 0, "ppo: --grad-accum ", A, " must divide the ", per_mini,
              " sequences of a mini-batch");
  const int64_t per_micro = per_mini / A;
  const Device device = models.policy->device();
  const int32_t pad = models.tokenizer->pad_id() >= 0 ? models.tokenizer->pad_id() : 0;
  MeanMetrics metrics;
  UpdateResult result;
  for (int64_t epoch = 0; epoch < o.ppo_epochs; ++epoch) {
    std::vector<int64_t> order(static_cast<size_t>(R));
    std::iota(order.begin(), order.end(), int64_t{0});
    Generator gen(o.seed ^ kMiniBatchSeedSalt,
                  static_cast<uint64_t>(rollout.step * o.ppo_epochs + epoch) << 32);
    for (int64_t i = R - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(gen.below(static_cast<uint64_t>(i + 1)));
      std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
    }
    for (int64_t mb = 0; mb < o.mini_batches; ++mb) {
      double loss_sum = 0.0;
      for (int64_t micro = 0; micro < A; ++micro) {
        std::vector<const Sample*> part;
        for (int64_t i = 0; i < per_micro; ++i) {
          part.push_back(&rollout.samples[static_cast<size_t>(
              order[static_cast<size_t>(mb * per_mini + micro * per_micro + i)])]);
        }
        SequenceBatch batch = sample_batch(part, device, pad);
        const int64_t T = batch.width();
        for (int64_t len : batch.lengths) result.tokens += len;
        Variable logp = response_logprobs(*models.policy, batch, o.temperature);
        PolicyLoss pl = ppo_policy_loss(logp, per_token_tensor(part, &Sample::logprobs, T, device),
                                        per_token_tensor(part, &Sample::advantages, T, device),
                                        batch.completion_mask, o.cliprange);
        Variable loss = pl.loss;
        metrics.add("policy_loss", pl.loss.data().item());
        metrics.add("clip_fraction", pl.clip_fraction);
        metrics.add("approx_kl", pl.approx_kl);
        metrics.add("ratio", pl.ratio_mean);
        if (o.advantage == AdvantageKind::grpo && kl_coef > 0) {
          Variable kl = k3_kl_loss(logp, per_token_tensor(part, &Sample::ref_logprobs, T, device),
                                   batch.completion_mask);
          metrics.add("kl_loss", kl.data().item());
          loss = add(loss, scale(kl, static_cast<float>(kl_coef)));
        }
        if (o.advantage == AdvantageKind::gae) {
          ValueLoss vl = ppo_value_loss(position_values(*models.value, batch),
                                        per_token_tensor(part, &Sample::values, T, device),
                                        per_token_tensor(part, &Sample::returns, T, device),
                                        batch.completion_mask, o.cliprange_value);
          metrics.add("value_loss", vl.loss.data().item());
          metrics.add("value_clip_fraction", vl.clip_fraction);
          loss = add(loss, scale(vl.loss, static_cast<float>(o.vf_coef)));
        }
        const double value = loss.data().item();
        loss_sum += value / static_cast<double>(A);
        scale(loss, static_cast<float>(1.0 / static_cast<double>(A))).backward();
      }
      const double grad_norm = clip_grad_norm(opt.all, trainer.grad_clip);
      if (!std::isfinite(loss_sum) || !std::isfinite(grad_norm)) {
        throw Error("step ", rollout.step + 1, " (epoch ", epoch + 1, ", mini-batch ", mb + 1,
                    "): the loss is ", loss_sum, " and the gradient norm ", grad_norm,
                    "; training stopped. The last good checkpoint is ",
                    last_checkpoint.empty() ? std::string("(none written yet)") : last_checkpoint,
                    ". Try a lower --lr, --kl-coef or --cliprange, or check the reward.");
      }
      metrics.add("loss", loss_sum);
      metrics.add("grad_norm", grad_norm);
      opt.policy->step(lr);
      opt.policy->zero_grad();
      if (opt.value != nullptr) {
        opt.value->step(lr);
        opt.value->zero_grad();
      }
    }
  }
  result.metrics = metrics.means();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

NamedTensors checkpoint_tensors(const PpoModels& models, const Optimizers& opt) {
  NamedTensors out = opt.policy->state();
  if (opt.value != nullptr) {
    for (auto& [name, v] : models.value->parameters()) {
      out.emplace_back(kValueModelPrefix + name, v.data().to(Device::cpu()));
    }
    for (auto& [name, t] : opt.value->state()) out.emplace_back(kValueOptimizerPrefix + name, t);
  }
  return out;
}

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

// Restores weights, optimizer states and β from a checkpoint; returns its step.
int64_t restore(const PpoModels& models, Optimizers& opt, const TrainerOptions& trainer,
                double& kl_coef, std::string& checkpoint) {
  TrainerCheckpoint ckpt = read_trainer_state(resolve_checkpoint(trainer.resume));
  check_resume_settings(ckpt, trainer);
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(ckpt.state_json.c_str());  // β exactly
  RLAIF_CHECK(!doc.HasParseError() && doc.IsObject() && doc.HasMember("kl_coef") &&
                  doc["kl_coef"].IsNumber() && doc.HasMember("optimizer_steps") &&
                  doc["optimizer_steps"].IsNumber(),
              "cannot resume from ", ckpt.dir,
              ": its state.json lacks kl_coef and optimizer_steps (not a PPO checkpoint?)");
  kl_coef = doc["kl_coef"].GetDouble();
  const auto optimizer_steps = static_cast<int64_t>(doc["optimizer_steps"].GetDouble());

  load_checkpoint_weights(*models.policy, ckpt.dir);
  NamedTensors policy_state, value_state;
  std::map<std::string, Tensor> value_weights;
  for (auto& [name, t] : ckpt.tensors) {
    if (starts_with(name, kValueModelPrefix)) {
      value_weights[name.substr(std::string(kValueModelPrefix).size())] = t;
    } else if (starts_with(name, kValueOptimizerPrefix)) {
      value_state.emplace_back(name.substr(std::string(kValueOptimizerPrefix).size()), t);
    } else {
      policy_state.emplace_back(name, t);
    }
  }
  opt.policy->load_state(policy_state, optimizer_steps);
  RLAIF_CHECK((opt.value != nullptr) == !value_weights.empty(), "cannot resume from ", ckpt.dir,
              opt.value ? ": it holds no value model (made with another --advantage?)"
                        : ": it holds a value model, and this run has none");
  if (opt.value != nullptr) {
    for (auto& [name, v] : models.value->parameters()) {
      auto it = value_weights.find(name);
      RLAIF_CHECK(it != value_weights.end() && it->second.shape() == v.shape(),
                  "cannot resume from ", ckpt.dir, ": its value model lacks ", name,
                  " or has another shape");
      v.data().copy_from(it->second);
    }
    opt.value->load_state(value_state, optimizer_steps);
  }
  checkpoint = ckpt.dir;
  return ckpt.step;
}

std::string format_metric(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

double metric(const Metrics& m, const std::string& name) {
  for (const auto& [k, v] : m) {
    if (k == name) return v;
  }
  return 0.0;
}

}  // namespace

PpoResult train_ppo(const PpoModels& models, const std::vector<std::string>& prompts,
                    const PpoOptions& options, const TrainerOptions& trainer) {
  options.validate();
  RLAIF_CHECK(models.policy && models.reference && models.tokenizer && models.reward,
              "train_ppo: the policy, reference, tokenizer and reward are all needed");
  const bool use_value = options.advantage == AdvantageKind::gae;
  RLAIF_CHECK(!use_value || models.value != nullptr, "ppo: --advantage gae needs a value model");
  if (use_value) {
    RLAIF_CHECK(models.value->config().vocab_size == models.policy->config().vocab_size,
                "ppo: the value model's vocabulary (", models.value->config().vocab_size,
                ") differs from the policy's (", models.policy->config().vocab_size,
                "): it must share the policy's tokenizer (give --value-model)");
    RLAIF_CHECK(models.value->has_scalar_head(), "ppo: the value model has no score head");
  }
  RLAIF_CHECK(!prompts.empty(), "ppo: no prompts");
  RLAIF_CHECK(!trainer.out_dir.empty(), "ppo: no output directory");
  RLAIF_CHECK(trainer.steps > 0, "ppo: --steps must be positive");
  RLAIF_CHECK(trainer.grad_accum > 0, "ppo: --grad-accum must be positive");
  LrSchedule schedule = trainer.schedule;
  schedule.total_steps = trainer.steps;
  schedule.validate();
  fs::create_directories(trainer.out_dir);

  Params policy_params = trainable(models.policy);
  Params value_params = trainable(use_value ? models.value : nullptr);
  RLAIF_CHECK(!policy_params.empty(), "ppo: the policy has no trainable parameters");
  AdamW policy_opt(policy_params, trainer.adamw);
  std::unique_ptr<AdamW> value_opt;
  if (use_value) {
    RLAIF_CHECK(!value_params.empty(), "ppo: the value model has no trainable parameters");
    value_opt = std::make_unique<AdamW>(value_params, trainer.adamw);
  }
  Optimizers opt{&policy_opt, value_opt.get(), policy_params};
  opt.all.insert(opt.all.end(), value_params.begin(), value_params.end());

  PpoResult result;
  double kl_coef = options.kl_coef;
  int64_t start = 0;
  if (!trainer.resume.empty()) {
    start = restore(models, opt, trainer, kl_coef, result.checkpoint);
    std::fprintf(stderr, "%s: resuming from %s at step %lld\n", trainer.label.c_str(),
                 result.checkpoint.c_str(), static_cast<long long>(start));
    RLAIF_CHECK(start <= trainer.steps, "cannot resume from ", result.checkpoint,
                ": it is at step ", start, ", past --steps ", trainer.steps);
  }
  std::unique_ptr<AdaptiveKlController> controller;
  if (options.adaptive_kl_target > 0) {
    controller = std::make_unique<AdaptiveKlController>(kl_coef, options.adaptive_kl_target,
                                                        options.adaptive_kl_horizon);
  }
  MetricsLog log((fs::path(trainer.out_dir) / "metrics.jsonl").string(),
                 trainer.resume.empty() ? -1 : start);
  auto save = [&](int64_t step) {
    const Metrics extra = {{"kl_coef", kl_coef},
                           {"optimizer_steps", static_cast<double>(policy_opt.step_count())}};
    result.checkpoint =
        save_checkpoint(trainer.out_dir, step, *models.policy, trainer.tokenizer_model,
                        trainer_state_json(step, trainer, extra), checkpoint_tensors(models, opt));
    prune_checkpoints(trainer.out_dir, trainer.keep);
  };

  RolloutModels rollout_models{models.policy, models.reference, use_value ? models.value : nullptr,
                               models.tokenizer, models.reward};
  StopSignals signals;
  Progress progress(trainer.label, trainer.steps - start, "steps");
  const auto run_start = std::chrono::steady_clock::now();
  int64_t tokens_total = 0;
  std::string note;
  for (int64_t step = start; step < trainer.steps; ++step) {
    const double lr = schedule.at(step);
    Rollout rollout = collect_rollout(rollout_models, prompts, step, options);
    assign_advantages(rollout, options, kl_coef);
    Metrics values = rollout_metrics(rollout, options, kl_coef);
    values.emplace_back("kl_coef", kl_coef);
    UpdateResult upd =
        update(models, opt, rollout, options, trainer, lr, kl_coef, result.checkpoint);
    values.insert(values.end(), upd.metrics.begin(), upd.metrics.end());
    const int64_t generated = rollout.response_tokens();
    values.emplace_back("lr", lr);
    values.emplace_back(
        "rollout_tokens_per_s",
        rollout.seconds > 0 ? static_cast<double>(generated) / rollout.seconds : 0.0);
    values.emplace_back("train_tokens_per_s",
                        upd.seconds > 0 ? static_cast<double>(upd.tokens) / upd.seconds : 0.0);
    values.emplace_back(
        "elapsed_s",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count());
    if (controller) {
      controller->set_value(kl_coef);
      controller->update(metric(values, "kl"), static_cast<int64_t>(rollout.samples.size()));
      kl_coef = controller->value();
    }
    const int64_t done = step + 1;
    log.write(done, "train", values);
    result.last_metrics = values;
    result.steps_done = done;
    tokens_total += generated;
    note = "score " + format_metric(metric(values, "score")) + " | kl " +
           format_metric(metric(values, "kl"));
    progress.update(done - start, tokens_total, note);
    if (trainer.save_every > 0 && done % trainer.save_every == 0) save(done);
    if (int sig = signals.pending(); sig != 0 && done != trainer.steps) {
      if (trainer.save_every <= 0 || done % trainer.save_every != 0) save(done);
      progress.finish(note);
      std::fprintf(stderr,
                   "%s: stopped by signal %d after step %lld; checkpoint %s\n"
                   "continue with --resume %s\n",
                   trainer.label.c_str(), sig, static_cast<long long>(done),
                   result.checkpoint.c_str(), trainer.out_dir.c_str());
      result.interrupted = true;
      result.signal = sig;
      result.kl_coef = kl_coef;
      return result;
    }
  }
  progress.finish(note);
  result.kl_coef = kl_coef;
  save_model(trainer.out_dir, *models.policy, trainer.tokenizer_model);
  if (use_value) {
    save_model((fs::path(trainer.out_dir) / "value_model").string(), *models.value,
               trainer.tokenizer_model);
  }
  return result;
}

}  // namespace rlaif
