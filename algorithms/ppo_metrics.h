// The metrics PPO logs besides its losses: running means of the update's diagnostics, means over
// data-parallel ranks, and the same values under the names TRL's PPOTrainer and GRPOTrainer log
// (objective/*, policy/*, loss/*, val/*), so that dashboards written for TRL read rlaif's logs.
// Known value: objective/rlhf_reward = score + non_score_reward, e.g. score 0.5 with a KL
// penalty of −0.125 logs 0.375.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "algorithms/ppo_rollout.h"
#include "runtime/communicator.h"

namespace rlaif {

using Metrics = std::vector<std::pair<std::string, double>>;

// The value of metric `name` in `m`, or 0 when it is not there.
double metric_or_zero(const Metrics& m, const std::string& name);

// Running means of the update's diagnostics, in first-seen order.
class MeanMetrics {
 public:
  void add(const std::string& name, double value);
  Metrics means() const;

 private:
  struct Entry {
    std::string name;
    double sum;
    double count;
  };
  std::vector<Entry> entries_;
};

// The mean of each of `values` over the ranks (f32, as the trainer's metrics); as they are on one.
void rank_mean(Communicator& comm, std::vector<double*> values);

// The step's metrics again under the names TRL's PPOTrainer (and, for grpo, GRPOTrainer) logs,
// so dashboards and scripts written for TRL read rlaif's logs: objective/* of the rollout (TRL's
// objective/entropy is the per-response sum, not the per-token mean), policy/*, loss/* and val/*
// of the updates. The short names stay.
// `sequences` is the rollout's sequence count (val/num_eos_tokens counts them).
void add_trl_names(Metrics& values, double sequences, AdvantageKind advantage);

}  // namespace rlaif
