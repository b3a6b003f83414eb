#include "algorithms/ppo_metrics.h"

#include "runtime/tensor.h"

namespace rlaif {

double metric_or_zero(const Metrics& m, const std::string& name) {
  for (const auto& [k, v] : m) {
    if (k == name) return v;
  }
  return 0.0;
}

void MeanMetrics::add(const std::string& name, double value) {
  for (auto& e : entries_) {
    if (e.name == name) {
      e.sum += value;
      e.count += 1;
      return;
    }
  }
  entries_.push_back({name, value, 1});
}

Metrics MeanMetrics::means() const {
  Metrics out;
  for (const auto& e : entries_) out.emplace_back(e.name, e.sum / e.count);
  return out;
}

void rank_mean(Communicator& comm, std::vector<double*> values) {
  if (comm.size() == 1 || values.empty()) return;
  std::vector<float> v;
  for (double* x : values) v.push_back(static_cast<float>(*x));
  Tensor t = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  comm.all_reduce_mean(t);
  v = t.to_vector<float>();
  for (size_t i = 0; i < values.size(); ++i) *values[i] = v[i];
}

void add_trl_names(Metrics& values, double sequences, AdvantageKind advantage) {
  auto has = [&](const char* name) {
    for (const auto& [k, v] : values)
      if (k == name) return true;
    return false;
  };
  Metrics trl;
  auto alias = [&](const char* trl_name, const char* name) {
    if (has(name)) trl.emplace_back(trl_name, metric_or_zero(values, name));
  };
  alias("objective/kl", "kl");
  trl.emplace_back("objective/entropy",
                   metric_or_zero(values, "entropy") * metric_or_zero(values, "response_length"));
  alias("objective/non_score_reward", "non_score_reward");
  trl.emplace_back(
      "objective/rlhf_reward",
      metric_or_zero(values, "score") +
          (has("non_score_reward") ? metric_or_zero(values, "non_score_reward") : 0.0));
  alias("objective/scores", "score");
  alias("policy/approxkl_avg", "approx_kl");
  alias("policy/clipfrac_avg", "clip_fraction");
  alias("loss/policy_avg", "policy_loss");
  alias("loss/value_avg", "value_loss");
  alias("val/clipfrac_avg", "value_clip_fraction");
  alias("val/ratio", "ratio");
  trl.emplace_back("val/num_eos_tokens", metric_or_zero(values, "eos_fraction") * sequences);
  if (advantage == AdvantageKind::grpo) {
    alias("reward", "score");
    alias("completions/mean_length", "response_length");
    alias("clip_ratio/region_mean", "clip_fraction");
  }
  values.insert(values.end(), trl.begin(), trl.end());
}

}  // namespace rlaif
