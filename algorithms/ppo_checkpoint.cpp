#include "algorithms/ppo_checkpoint.h"

#include <rapidjson/document.h>

#include <cstdio>
#include <map>
#include <utility>
#include <vector>

#include "io/checkpoint.h"
#include "io/json_exact.h"
#include "io/model_dir.h"

namespace rlaif {
namespace {

constexpr const char* kValueOptimizerPrefix = "value_optimizer.";

using Params = std::vector<std::pair<std::string, Variable>>;

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

// The value model's weights a checkpoint holds: its adapters (and the head they train) when it
// has them, else every weight.
Params saved_value_weights(const Transformer& value) {
  return value.has_adapters() ? value.adapter_parameters() : value.parameters();
}

// One optimizer holds the policy's and the value model's parameters (the gradient norm is clipped
// over both), the latter named "value_model.NAME". Checkpoints keep the format of a policy
// optimizer beside a value optimizer: its state "KIND.value_model.NAME" is written as
// "value_optimizer.KIND.NAME", and read back.
std::string checkpoint_name(const std::string& state_name) {
  const size_t dot = state_name.find('.');
  if (dot == std::string::npos || !starts_with(state_name.substr(dot + 1), kPpoValueModelPrefix))
    return state_name;
  return kValueOptimizerPrefix + state_name.substr(0, dot + 1) +
         state_name.substr(dot + 1 + std::string(kPpoValueModelPrefix).size());
}
std::string state_name(const std::string& checkpoint_name) {
  if (!starts_with(checkpoint_name, kValueOptimizerPrefix)) return checkpoint_name;
  const std::string rest = checkpoint_name.substr(std::string(kValueOptimizerPrefix).size());
  const size_t dot = rest.find('.');
  if (dot == std::string::npos) return checkpoint_name;
  return rest.substr(0, dot + 1) + kPpoValueModelPrefix + rest.substr(dot + 1);
}

}  // namespace

NamedTensors ppo_checkpoint_tensors(const PpoModels& models, const DataParallelOptimizer& optimizer,
                                    bool use_value, bool wanted) {
  NamedTensors out;
  for (auto& [name, t] : optimizer.state(wanted)) out.emplace_back(checkpoint_name(name), t);
  if (use_value && wanted) {
    for (auto& [name, v] : saved_value_weights(*models.value)) {
      out.emplace_back(kPpoValueModelPrefix + name, v.data().to(Device::cpu()));
    }
  }
  return out;
}

int64_t restore_ppo_checkpoint(const PpoModels& models, DataParallelOptimizer& optimizer,
                               bool use_value, const TrainerOptions& trainer, double& kl_coef,
                               std::string& checkpoint) {
  TrainerCheckpoint ckpt = read_trainer_state(resolve_checkpoint(trainer.resume));
  check_resume_settings(ckpt, trainer);
  const std::string note = resume_kernels_note(ckpt, models.policy->device());
  if (!note.empty() && (trainer.comm == nullptr || trainer.comm->rank() == 0))
    std::fprintf(stderr, "%s: %s\n", trainer.label.c_str(), note.c_str());
  rapidjson::Document doc;
  const bool parsed = !parse_json_exact(doc, ckpt.state_json).IsError();  // β exactly
  RLAIF_CHECK(parsed && doc.IsObject() && doc.HasMember("kl_coef") && doc["kl_coef"].IsNumber() &&
                  doc.HasMember("optimizer_steps") && doc["optimizer_steps"].IsNumber(),
              "cannot resume from ", ckpt.dir,
              ": its state.json lacks kl_coef and optimizer_steps (not a PPO checkpoint?)");
  kl_coef = doc["kl_coef"].GetDouble();
  const double steps_written = doc["optimizer_steps"].GetDouble();
  RLAIF_CHECK(steps_written >= 0 && steps_written <= 0x1p53 &&
                  steps_written == static_cast<double>(static_cast<int64_t>(steps_written)),
              "cannot resume from ", ckpt.dir, ": its optimizer_steps (", steps_written,
              ") is not a count");
  const auto optimizer_steps = static_cast<int64_t>(steps_written);

  load_checkpoint_weights(*models.policy, ckpt.dir);
  NamedTensors state;
  std::map<std::string, Tensor> value_weights;
  for (auto& [name, t] : ckpt.tensors) {
    if (starts_with(name, kPpoValueModelPrefix)) {
      value_weights[name.substr(std::string(kPpoValueModelPrefix).size())] = t;
    } else {
      state.emplace_back(state_name(name), t);
    }
  }
  RLAIF_CHECK(use_value == !value_weights.empty(), "cannot resume from ", ckpt.dir,
              use_value ? ": it holds no value model (made with another --advantage?)"
                        : ": it holds a value model, and this run has none");
  if (use_value) {
    for (auto& [name, v] : saved_value_weights(*models.value)) {
      auto it = value_weights.find(name);
      RLAIF_CHECK(it != value_weights.end() && it->second.shape() == v.shape(),
                  "cannot resume from ", ckpt.dir, ": its value model lacks ", name,
                  " or has another shape");
      v.data().copy_from(it->second);
    }
  }
  optimizer.load_state(state, optimizer_steps);
  checkpoint = ckpt.dir;
  return ckpt.step;
}

}  // namespace rlaif
