#include "algorithms/ppo.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <optional>

#include "algorithms/data_parallel_optimizer.h"
#include "algorithms/ppo_checkpoint.h"
#include "algorithms/ppo_data_parallel.h"
#include "algorithms/ppo_losses.h"
#include "algorithms/ppo_metrics.h"
#include "algorithms/stop_signals.h"
#include "autograd/ops.h"
#include "io/checkpoint.h"
#include "io/metrics_log.h"
#include "io/model_dir.h"
#include "io/peft_adapter.h"
#include "io/progress.h"
#include "io/spend_meter.h"
#include "runtime/communicator.h"
#include "runtime/rng.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;

// Mini-batch orders draw from their own Philox key, apart from the prompt order's.
constexpr uint64_t kMiniBatchSeedSalt = 0x9E3779B97F4A7C15ull;

using Params = std::vector<std::pair<std::string, Variable>>;

Params trainable(const Transformer* model) {
  return model == nullptr ? Params() : trainable_parameters(*model);
}

struct UpdateResult {
  Metrics metrics;
  int64_t tokens = 0;  // real tokens through forward and backward
  double seconds = 0.0;
};

// ppo_epochs × mini_batches updates on one rollout (the whole rollout, on every rank). Rank r
// trains on its share of each micro-batch, weighted so that the mean over ranks is the
// micro-batch's token mean (algorithms/ppo_data_parallel.h); `optimizer` averages the gradients.
UpdateResult update(const PpoModels& models, DataParallelOptimizer& optimizer, Communicator& comm,
                    const Rollout& rollout, const PpoOptions& o, const TrainerOptions& trainer,
                    double lr, double kl_coef, const std::string& last_checkpoint) {
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
      // Each sequence's token weight in the mini-batch's loss (--loss-aggregation).
      std::map<int64_t, double> token_weight;
      {
        const auto first = order.begin() + mb * per_mini;
        std::vector<int64_t> lengths;
        for (auto it = first; it != first + per_mini; ++it)
          lengths.push_back(static_cast<int64_t>(
              rollout.samples[static_cast<size_t>(*it)].tokens.completion.size()));
        const std::vector<double> w =
            aggregation_weights(o.loss_aggregation, lengths, o.max_new_tokens);
        for (int64_t i = 0; i < per_mini; ++i) token_weight[first[i]] = w[static_cast<size_t>(i)];
      }
      double loss_sum = 0.0;
      for (int64_t micro = 0; micro < A; ++micro) {
        // The last micro-batch's backward pass sends each bucket of gradients as it completes.
        std::optional<GradientReadyScope> overlap;
        if (micro + 1 == A && trainer.overlap_reduction)
          overlap.emplace(optimizer.overlap_backward());
        // LoRA dropout masks: a pure function of the run's seed and this micro-batch's place.
        const int64_t pass = (rollout.step * o.ppo_epochs + epoch) * o.mini_batches + mb;
        models.policy->set_lora_dropout_seed(
            micro_batch_seed(trainer.seed, pass, micro, comm.rank()));
        if (models.value != nullptr)
          models.value->set_lora_dropout_seed(
              micro_batch_seed(trainer.seed ^ kMiniBatchSeedSalt, pass, micro, comm.rank()));
        const auto at = order.begin() + mb * per_mini + micro * per_micro;
        const MicroBatchShare share = micro_batch_share(std::vector<int64_t>(at, at + per_micro),
                                                        rollout.samples, comm.rank(), comm.size());
        std::vector<const Sample*> part;
        for (int64_t i : share.samples) part.push_back(&rollout.samples[static_cast<size_t>(i)]);
        // The diagnostics are token means over the share, weighted by w so that their mean over
        // ranks is the micro-batch's token mean.
        const double w = share.weight;
        SequenceBatch batch = sample_batch(part, device, pad);
        const int64_t T = batch.width();
        for (int64_t len : batch.lengths) result.tokens += len;
        // The losses are this share's part of the mini-batch's loss: Σ over the share's tokens
        // of weight·term. The parts add up over micro-batches and ranks; the optimizer averages
        // the ranks' gradients, hence the factor R in the backward pass. A loss logged per
        // micro-batch is scaled by R·A so that the mean of the logged values is the mini-batch's.
        std::vector<double> row_weights;
        for (int64_t i : share.samples) row_weights.push_back(token_weight.at(i));
        const Tensor weights = per_token_constant(part, row_weights, T, device);
        const double ranks = comm.size();
        const double log_scale = ranks * static_cast<double>(A);
        Variable logp = response_logprobs(*models.policy, batch, o.temperature);
        PolicyLoss pl =
            ppo_policy_loss(logp, per_token_tensor(part, &Sample::logprobs, T, device),
                            per_token_tensor(part, &Sample::advantages, T, device),
                            batch.completion_mask, o.cliprange, o.cliprange_high, weights);
        Variable loss = pl.loss;
        metrics.add("policy_loss", log_scale * pl.loss.data().item());
        metrics.add("clip_fraction", w * pl.clip_fraction);
        metrics.add("approx_kl", w * pl.approx_kl);
        metrics.add("ratio", w * pl.ratio_mean);
        if (o.advantage == AdvantageKind::grpo && kl_coef > 0) {
          Variable kl = k3_kl_loss(logp, per_token_tensor(part, &Sample::ref_logprobs, T, device),
                                   batch.completion_mask, weights);
          metrics.add("kl_loss", log_scale * kl.data().item());
          loss = add(loss, scale(kl, static_cast<float>(kl_coef)));
        }
        if (o.advantage == AdvantageKind::gae) {
          ValueLoss vl = ppo_value_loss(position_values(*models.value, batch),
                                        per_token_tensor(part, &Sample::values, T, device),
                                        per_token_tensor(part, &Sample::returns, T, device),
                                        batch.completion_mask, o.cliprange_value, weights);
          metrics.add("value_loss", log_scale * vl.loss.data().item());
          metrics.add("value_clip_fraction", w * vl.clip_fraction);
          loss = add(loss, scale(vl.loss, static_cast<float>(o.vf_coef)));
        }
        loss_sum += ranks * loss.data().item();
        scale(loss, static_cast<float>(ranks)).backward();
      }
      // Every rank must agree on stopping; the loss is the ranks' mean (the micro-batches').
      rank_mean(comm, {&loss_sum});
      const double grad_norm = optimizer.reduce_gradients(trainer.grad_clip);
      if (!std::isfinite(loss_sum) || !std::isfinite(grad_norm)) {
        throw Error("step ", rollout.step + 1, " (epoch ", epoch + 1, ", mini-batch ", mb + 1,
                    "): the loss is ", loss_sum, " and the gradient norm ", grad_norm,
                    "; training stopped. The last good checkpoint is ",
                    last_checkpoint.empty() ? std::string("(none written yet)") : last_checkpoint,
                    ". Try a lower --lr, --kl-coef or --cliprange, or check the reward.");
      }
      metrics.add("loss", loss_sum);
      metrics.add("grad_norm", grad_norm);
      optimizer.step(lr);
      optimizer.zero_grad();
    }
  }
  result.metrics = metrics.means();
  // The weighted shares' diagnostics become the micro-batches' (loss and grad_norm are already
  // the same on every rank, and stay so).
  std::vector<double*> shares;
  for (auto& [name, v] : result.metrics) {
    if (name != "loss" && name != "grad_norm") shares.push_back(&v);
  }
  rank_mean(comm, shares);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

std::string format_metric(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
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
  const TrainingSetup setup = training_setup(trainer);
  const LrSchedule& schedule = setup.schedule;
  Communicator& comm = *setup.comm;
  Communicator& device_comm = *setup.device_comm;
  check_ppo_ranks(options, trainer.grad_accum, comm.size());
  const bool lead = setup.lead;
  if (lead) fs::create_directories(trainer.out_dir);

  Params params = trainable(models.policy);
  RLAIF_CHECK(!params.empty(), "ppo: the policy has no trainable parameters");
  if (use_value) {
    const Params value_params = trainable(models.value);
    RLAIF_CHECK(!value_params.empty(), "ppo: the value model has no trainable parameters");
    for (const auto& [name, v] : value_params) params.emplace_back(kPpoValueModelPrefix + name, v);
  }
  // Gradients and optimizer shards live on the model's device and move through device_comm
  // (NCCL for a GPU); the loop's host numbers (rollouts, metrics, signals) through `comm`.
  DataParallelOptimizer optimizer(params, trainer.adamw, device_comm, trainer.zero_stage);

  PpoResult result;
  double kl_coef = options.kl_coef;
  int64_t start = 0;
  if (!trainer.resume.empty()) {
    start =
        restore_ppo_checkpoint(models, optimizer, use_value, trainer, kl_coef, result.checkpoint);
    if (lead)
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
  std::optional<MetricsLog> log;
  std::optional<Progress> progress;
  if (lead) {
    log.emplace((fs::path(trainer.out_dir) / "metrics.jsonl").string(),
                trainer.resume.empty() ? -1 : start, trainer.tensorboard_dir);
    progress.emplace(trainer.label, trainer.steps - start, "steps");
  }
  auto save = [&](int64_t step) {
    const Metrics extra = {{"kl_coef", kl_coef},
                           {"optimizer_steps", static_cast<double>(optimizer.step_count())}};
    const NamedTensors tensors =
        ppo_checkpoint_tensors(models, optimizer, use_value, lead);  // collective
    if (lead) {
      result.checkpoint =
          save_checkpoint(trainer.out_dir, step, *models.policy, trainer.tokenizer_source,
                          trainer_state_json(step, trainer, extra), tensors, trainer.base_model);
      prune_checkpoints(trainer.out_dir, trainer.keep);
    }
    // No rank runs ahead (or exits after a signal) before the checkpoint is complete.
    comm.barrier();
  };

  RolloutModels rollout_models{models.policy, models.reference, use_value ? models.value : nullptr,
                               models.tokenizer, models.reward};
  StopSignals signals;
  const auto run_start = std::chrono::steady_clock::now();
  int64_t tokens_total = 0;
  std::string note;
  for (int64_t step = start; step < trainer.steps; ++step) {
    const double lr = schedule.at(step);
    // Every rank holds the whole rollout from here on, so advantages, β and the rollout's metrics
    // are the same on every rank (algorithms/ppo_data_parallel.h).
    Rollout rollout;
    try {
      rollout = collect_rollout(rollout_models, prompts, step, options, &comm);
    } catch (const SpendLimitReached& e) {
      // Every rank arrives here at the same step (rank 0's critic stops them all in
      // collect_rollout). Nothing of this step has touched the models: a checkpoint at `step`
      // resumes it, and the critic's answers so far come back from the cache.
      const bool saved = step == start ? !trainer.resume.empty()
                                       : trainer.save_every > 0 && step % trainer.save_every == 0;
      if (!saved) save(step);
      if (lead) {
        progress->finish(note);
        std::fprintf(stderr, "%s: %s; stopped before step %lld. Checkpoint: %s\n",
                     trainer.label.c_str(), e.what(), static_cast<long long>(step + 1),
                     result.checkpoint.c_str());
      }
      result.spend_limit_stop = e.what();
      result.kl_coef = kl_coef;
      return result;
    }
    assign_advantages(rollout, options, kl_coef);
    Metrics values = rollout_metrics(rollout, options, kl_coef);
    values.emplace_back("kl_coef", kl_coef);
    UpdateResult upd =
        update(models, optimizer, comm, rollout, options, trainer, lr, kl_coef, result.checkpoint);
    values.insert(values.end(), upd.metrics.begin(), upd.metrics.end());
    // The ranks agree on the step's trained tokens and on whether a signal stops the run after it:
    // a rank stopping alone would leave the others waiting in the next collective.
    const int signal = agree_on_stop(comm, upd.tokens, signals.pending());
    const int64_t generated = rollout.response_tokens();
    add_trl_names(values, static_cast<double>(rollout.samples.size()), options.advantage);
    values.emplace_back("lr", lr);
    values.emplace_back(
        "rollout_tokens_per_s",
        rollout.seconds > 0 ? static_cast<double>(generated) / rollout.seconds : 0.0);
    values.emplace_back("train_tokens_per_s",
                        upd.seconds > 0 ? static_cast<double>(upd.tokens) / upd.seconds : 0.0);
    // Where the step's time went: the rollout's parts on rank 0, then the update.
    values.emplace_back("time/generate_s", rollout.generate_seconds);
    values.emplace_back("time/score_s", rollout.score_seconds);
    values.emplace_back("time/evaluate_s", rollout.evaluate_seconds);
    values.emplace_back("time/rollout_s", rollout.seconds);
    values.emplace_back("time/update_s", upd.seconds);
    values.emplace_back(
        "elapsed_s",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count());
    if (controller) {
      controller->set_value(kl_coef);
      controller->update(metric_or_zero(values, "kl"),
                         static_cast<int64_t>(rollout.samples.size()));
      kl_coef = controller->value();
    }
    const int64_t done = step + 1;
    if (lead) log->write(done, "train", values);
    result.last_metrics = values;
    result.steps_done = done;
    tokens_total += generated;
    note = "score " + format_metric(metric_or_zero(values, "score")) + " | kl " +
           format_metric(metric_or_zero(values, "kl"));
    if (lead) progress->update(done - start, tokens_total, note);
    if (trainer.save_every > 0 && done % trainer.save_every == 0) save(done);
    if (signal != 0 && done != trainer.steps) {
      if (trainer.save_every <= 0 || done % trainer.save_every != 0) save(done);
      if (lead) {
        progress->finish(note);
        print_signal_stop(trainer.label, signal, done, result.checkpoint, trainer.out_dir);
      }
      result.interrupted = true;
      result.signal = signal;
      result.kl_coef = kl_coef;
      return result;
    }
  }
  result.kl_coef = kl_coef;
  if (lead) {
    progress->finish(note);
    save_trained_model(trainer.out_dir, *models.policy, trainer.tokenizer_source,
                       trainer.base_model);
    if (use_value) {
      save_trained_model((fs::path(trainer.out_dir) / "value_model").string(), *models.value,
                         trainer.tokenizer_source, options.value_base_model);
    }
  }
  comm.barrier();  // every rank returns once the models are written
  return result;
}

}  // namespace rlaif
