#include "algorithms/trainer.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_info.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "algorithms/data_parallel_optimizer.h"
#include "algorithms/stop_signals.h"
#include "io/checkpoint.h"
#include "io/metrics_log.h"
#include "io/model_dir.h"
#include "io/peft_adapter.h"
#include "io/progress.h"
#include "io/spend_meter.h"
#include "runtime/communicator.h"

namespace rlaif {
namespace {

void restore(Transformer& model, DataParallelOptimizer& optimizer, const TrainerCheckpoint& ckpt) {
  load_checkpoint_weights(model, ckpt.dir);
  optimizer.load_state(ckpt.tensors, ckpt.step);
}

std::string format_metric(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// Averages the step's loss and metrics over the ranks, and sums its tokens (the gradients are the
// optimizer's). The signal is agreed on too: a rank stopping alone would leave the others waiting
// in the next collective. Returns the signal to stop on (0: none), the same on every rank.
int reduce_step(Communicator& comm, double& loss, int64_t& tokens,
                std::vector<std::pair<std::string, double>>& extra, int signal) {
  std::vector<float> means = {static_cast<float>(loss)};
  for (const auto& [key, value] : extra) means.push_back(static_cast<float>(value));
  Tensor m = Tensor::from_vector(means, {static_cast<int64_t>(means.size())});
  comm.all_reduce_mean(m);
  means = m.to_vector<float>();
  loss = means[0];
  for (size_t i = 0; i < extra.size(); ++i) extra[i].second = means[i + 1];
  return agree_on_stop(comm, tokens, signal);
}

}  // namespace

void load_checkpoint_weights(Transformer& model, const std::string& checkpoint) {
  namespace fs = std::filesystem;
  if (model.has_adapters()) {
    load_adapter_weights(model, checkpoint);
    return;
  }
  RLAIF_CHECK(!fs::exists(fs::path(checkpoint) / "adapter_config.json"), "cannot resume from ",
              checkpoint,
              ": it holds LoRA adapters, but this run trains the whole model (give the same "
              "--lora-r or --adapter flags as the run that wrote it)");
  Transformer saved = load_model(checkpoint, Device::cpu());
  RLAIF_CHECK(saved.config().to_json() == model.config().to_json(), "cannot resume from ",
              checkpoint, ": its model config differs from --model's:\n", saved.config().to_json(),
              "vs\n", model.config().to_json());
  auto from = saved.parameters(), to = model.parameters();
  for (size_t i = 0; i < to.size(); ++i) {
    const Tensor& dst = to[i].second.data();
    const Tensor& src = from[i].second.data();
    if (dst.dtype() == src.dtype()) {
      dst.copy_from(src);
    } else {  // a bf16 model was saved widened to f32: rounding back restores its exact bits
      backend_for(dst.device()).cast(src.to(dst.device()), dst);
    }
  }
}

std::vector<std::pair<std::string, Variable>> trainable_parameters(const Transformer& model) {
  std::vector<std::pair<std::string, Variable>> trainable;
  for (auto& [name, v] : model.parameters()) {
    if (v.requires_grad()) trainable.emplace_back(name, v);
  }
  for (auto& [name, v] : model.adapter_parameters()) {
    if (v.requires_grad()) trainable.emplace_back(name, v);
  }
  return trainable;
}

uint64_t micro_batch_seed(uint64_t seed, int64_t step, int64_t micro, int rank) {
  // splitmix64's finaliser over each field in turn: every bit of every field moves the result.
  auto mix = [](uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  uint64_t h = mix(seed + 0x9e3779b97f4a7c15ULL);
  for (uint64_t field :
       {static_cast<uint64_t>(step), static_cast<uint64_t>(micro), static_cast<uint64_t>(rank)}) {
    h = mix(h ^ (field + 0x9e3779b97f4a7c15ULL));
  }
  return h;
}

std::string trainer_state_json(int64_t step, const TrainerOptions& o,
                               const std::vector<std::pair<std::string, double>>& extra) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("format", 1, a);
  doc.AddMember("step", step, a);
  doc.AddMember("cpu_kernels", rapidjson::Value(cpu::blas_core_name().c_str(), a), a);
  for (const auto& [key, value] : extra) {
    doc.AddMember(rapidjson::Value(key.c_str(), a), rapidjson::Value(value), a);
  }
  rapidjson::Value settings(rapidjson::kObjectType);
  for (const auto& [key, value] : o.settings) {
    settings.AddMember(rapidjson::Value(key.c_str(), a), rapidjson::Value(value.c_str(), a), a);
  }
  doc.AddMember("settings", settings, a);
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc.Accept(writer);
  return std::string(buffer.GetString()) + "\n";
}

void check_resume_settings(const TrainerCheckpoint& ckpt, const TrainerOptions& o) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(ckpt.state_json.c_str());
  std::map<std::string, std::string> saved;
  if (doc.HasMember("settings") && doc["settings"].IsObject()) {
    for (auto& m : doc["settings"].GetObject()) {
      if (m.value.IsString()) saved[m.name.GetString()] = m.value.GetString();
    }
  }
  std::map<std::string, std::string> now(o.settings.begin(), o.settings.end());
  std::string diffs;
  for (const std::string& key : o.identity_keys) {
    std::string was = saved.count(key) ? saved[key] : "(unset)";
    std::string is = now.count(key) ? now[key] : "(unset)";
    if (was != is)
      diffs += "\n  --" + key + ": checkpoint has '" + was + "', this run has '" + is + "'";
  }
  RLAIF_CHECK(diffs.empty(), "cannot resume from ", ckpt.dir,
              ": it was made with different settings:", diffs);
}

std::string resume_kernels_note(const TrainerCheckpoint& ckpt, Device device) {
  if (!device.is_cpu()) return "";
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(ckpt.state_json.c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("cpu_kernels") ||
      !doc["cpu_kernels"].IsString())
    return "";
  const std::string was = doc["cpu_kernels"].GetString(), is = cpu::blas_core_name();
  if (was == is) return "";
  return "note: " + ckpt.dir + " was written on OpenBLAS's " + was + " kernels and this run uses " +
         is + "'s: it continues correctly, but its last bits will differ from an uninterrupted " +
         "run's (force a kernel set with OPENBLAS_CORETYPE=" + was + " where the CPU supports it)";
}

TrainingSetup training_setup(const TrainerOptions& options) {
  RLAIF_CHECK(!options.out_dir.empty(), options.label, ": no output directory");
  RLAIF_CHECK(options.steps > 0, options.label, ": --steps must be positive");
  RLAIF_CHECK(options.grad_accum > 0, options.label, ": --grad-accum must be positive");
  TrainingSetup setup{options.schedule, options.comm, options.device_comm, false};
  setup.schedule.total_steps = options.steps;
  setup.schedule.validate();
  RLAIF_CHECK(options.comm != nullptr || launcher_world_size() <= 1, options.label,
              " was given no communicator: start it without mpirun (", launcher_world_size(),
              " ranks were launched)");
  static SingleProcessCommunicator alone;  // stateless: one serves every run
  if (setup.comm == nullptr) setup.comm = &alone;
  if (setup.device_comm == nullptr) setup.device_comm = setup.comm;
  const Communicator &comm = *setup.comm, &device_comm = *setup.device_comm;
  RLAIF_CHECK(device_comm.size() == comm.size() && device_comm.rank() == comm.rank(), options.label,
              ": the device communicator (", device_comm.name(), ", rank ", device_comm.rank(),
              " of ", device_comm.size(), ") is not over the ranks of ", comm.name(), " (rank ",
              comm.rank(), " of ", comm.size(), ")");
  setup.lead = comm.rank() == 0;
  return setup;
}

TrainResult train(Transformer& model, TrainingTask& task, const TrainerOptions& options) {
  namespace fs = std::filesystem;
  const TrainingSetup setup = training_setup(options);
  const LrSchedule& schedule = setup.schedule;
  Communicator& comm = *setup.comm;
  Communicator& device_comm = *setup.device_comm;
  const bool lead = setup.lead;
  if (lead) fs::create_directories(options.out_dir);

  const std::vector<std::pair<std::string, Variable>> trainable = trainable_parameters(model);
  RLAIF_CHECK(!trainable.empty(), options.label, ": the model has no trainable parameters");
  DataParallelOptimizer optimizer(trainable, options.adamw, device_comm, options.zero_stage);

  TrainResult result;
  int64_t start = 0;
  if (!options.resume.empty()) {
    TrainerCheckpoint ckpt = read_trainer_state(resolve_checkpoint(options.resume));
    check_resume_settings(ckpt, options);
    const std::string note = resume_kernels_note(ckpt, model.device());
    if (lead && !note.empty())
      std::fprintf(stderr, "%s: %s\n", options.label.c_str(), note.c_str());
    restore(model, optimizer, ckpt);
    start = ckpt.step;
    result.checkpoint = ckpt.dir;
    if (lead)
      std::fprintf(stderr, "%s: resuming from %s at step %lld\n", options.label.c_str(),
                   ckpt.dir.c_str(), static_cast<long long>(start));
    RLAIF_CHECK(start <= options.steps, "cannot resume from ", ckpt.dir, ": it is at step ", start,
                ", past --steps ", options.steps);
  }
  std::optional<MetricsLog> metrics;
  if (lead) {
    metrics.emplace((fs::path(options.out_dir) / "metrics.jsonl").string(),
                    options.resume.empty() ? -1 : start, options.tensorboard_dir);
  }

  auto save = [&](int64_t step) {
    // Collective: with ZeRO-1 every rank contributes its shard of the optimizer state; only the
    // writer gets it.
    const std::vector<std::pair<std::string, Tensor>> state = optimizer.state(lead);
    if (lead) {
      result.checkpoint =
          save_checkpoint(options.out_dir, step, model, options.tokenizer_source,
                          trainer_state_json(step, options), state, options.base_model);
      prune_checkpoints(options.out_dir, options.keep);
    }
    // No rank runs ahead (or exits after a signal) before the checkpoint is complete.
    comm.barrier();
  };
  auto evaluate = [&](int64_t step) {
    if (!lead) return;
    result.last_eval = task.evaluate();
    if (!result.last_eval.empty()) metrics->write(step, "eval", result.last_eval);
  };

  StopSignals signals;
  std::optional<Progress> progress;
  if (lead) progress.emplace(options.label, options.steps - start, "steps");
  auto run_start = std::chrono::steady_clock::now();
  int64_t tokens_total = 0;
  for (int64_t step = start; step < options.steps; ++step) {
    auto t0 = std::chrono::steady_clock::now();
    const double lr = schedule.at(step);
    double loss = 0.0;
    int64_t tokens = 0;
    std::vector<std::pair<std::string, double>> extra;
    try {
      for (int64_t micro = 0; micro < options.grad_accum; ++micro) {
        // The last micro-batch's backward pass sends each bucket of gradients as it completes.
        std::optional<GradientReadyScope> overlap;
        if (micro + 1 == options.grad_accum && options.overlap_reduction)
          overlap.emplace(optimizer.overlap_backward());
        model.set_lora_dropout_seed(micro_batch_seed(options.seed, step, micro, comm.rank()));
        MicroBatchResult r =
            task.micro_batch(step, micro, 1.0 / static_cast<double>(options.grad_accum));
        loss += r.loss / static_cast<double>(options.grad_accum);
        tokens += r.tokens;
        if (extra.empty()) extra.assign(r.metrics.size(), {"", 0.0});
        for (size_t i = 0; i < r.metrics.size() && i < extra.size(); ++i) {
          extra[i].first = r.metrics[i].first;
          extra[i].second += r.metrics[i].second / static_cast<double>(options.grad_accum);
        }
      }
    } catch (const SpendLimitReached& e) {
      if (comm.size() > 1) throw;
      // The step's gradients so far are dropped; the weights and the optimizer are as the last
      // step left them, which is what a checkpoint at `step` holds.
      optimizer.zero_grad();
      const bool saved = step == start ? !options.resume.empty()
                                       : options.save_every > 0 && step % options.save_every == 0;
      if (!saved) save(step);
      if (lead) {
        progress->finish("");
        std::fprintf(stderr, "%s: %s; stopped before step %lld. Checkpoint: %s\n",
                     options.label.c_str(), e.what(), static_cast<long long>(step + 1),
                     result.checkpoint.c_str());
      }
      result.spend_limit_stop = e.what();
      return result;
    }
    // Under data parallelism the ranks agree here on whether to stop after this step.
    int signal = 0;
    if (comm.size() > 1) signal = reduce_step(comm, loss, tokens, extra, signals.pending());
    const double grad_norm = optimizer.reduce_gradients(options.grad_clip);
    if (!std::isfinite(loss) || !std::isfinite(grad_norm)) {
      throw Error("step ", step + 1, ": the loss is ", loss, " and the gradient norm ", grad_norm,
                  "; training stopped. The last good checkpoint is ",
                  result.checkpoint.empty() ? std::string("(none written yet)") : result.checkpoint,
                  ". Try a lower --lr, gradient clipping, or check the data.");
    }
    optimizer.step(lr);
    optimizer.zero_grad();
    const int64_t done = step + 1;
    auto t1 = std::chrono::steady_clock::now();
    const double step_seconds = std::chrono::duration<double>(t1 - t0).count();
    const double elapsed = std::chrono::duration<double>(t1 - run_start).count();
    tokens_total += tokens;
    std::vector<std::pair<std::string, double>> values = {
        {"loss", loss},
        {"lr", lr},
        {"grad_norm", grad_norm},
        {"tokens", static_cast<double>(tokens)},
        {"tokens_per_s", step_seconds > 0 ? static_cast<double>(tokens) / step_seconds : 0.0},
        {"elapsed_s", elapsed}};
    values.insert(values.end(), extra.begin(), extra.end());
    if (lead) metrics->write(done, "train", values);
    result.last_loss = loss;
    result.steps_done = done;

    if (options.eval_every > 0 && done % options.eval_every == 0 && done != options.steps) {
      evaluate(done);
    }
    std::string note = "loss " + format_metric(loss);
    if (!result.last_eval.empty()) {
      note += " | " + result.last_eval[0].first + " " + format_metric(result.last_eval[0].second);
    }
    if (lead) progress->update(done - start, tokens_total, note);
    if (options.save_every > 0 && done % options.save_every == 0) save(done);
    if (int sig = comm.size() > 1 ? signal : signals.pending(); sig != 0 && done != options.steps) {
      if (options.save_every <= 0 || done % options.save_every != 0) save(done);
      if (lead) {
        progress->finish(note);
        print_signal_stop(options.label, sig, done, result.checkpoint, options.out_dir);
      }
      result.interrupted = true;
      result.signal = sig;
      return result;
    }
  }
  const double total_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  result.tokens_per_second =
      total_seconds > 0 ? static_cast<double>(tokens_total) / total_seconds : 0.0;
  evaluate(options.steps);
  std::string note = "loss " + format_metric(result.last_loss);
  if (!result.last_eval.empty()) {
    note += " | " + result.last_eval[0].first + " " + format_metric(result.last_eval[0].second);
  }
  if (lead) {
    progress->finish(note);
    save_trained_model(options.out_dir, model, options.tokenizer_source, options.base_model);
  }
  comm.barrier();  // every rank returns once the model is written
  return result;
}

}  // namespace rlaif
