// PPO for language models (Schulman et al., 2017; as applied to RLHF by Ziegler et al., 2019,
// Stiennon et al., 2020 and Ouyang et al., 2022, with the details of Huang et al., 2024, "The N+
// Implementation Details of RLHF with PPO"), and its value-free variants RLOO (Ahmadian et al.,
// 2024) and GRPO (Shao et al., 2024).
//
// One optimizer step s of the run (what --steps counts) is:
//   1. a rollout (algorithms/ppo_rollout.h): K responses to each of --batch prompts sampled from
//      the current policy, scored by the reward function, evaluated under the policy (log π_old),
//      the reference (log π_ref) and, for gae, the value model; per-token KL-penalised rewards;
//      advantages by GAE (value model), RLOO (leave-one-out) or GRPO (group normalisation);
//   2. --ppo-epochs passes over the rollout, each shuffled (Philox: seed, step, epoch) and cut
//      into --mini-batches mini-batches; each mini-batch is one AdamW update of the policy (and
//      value model) on
//        L = L_π + vf_coef·L_V          (gae)
//        L = L_π                        (rloo)
//        L = L_π + β·L_KL(k3)           (grpo)
//      (algorithms/ppo_losses.h), its gradient accumulated over --grad-accum micro-batches and
//      clipped to --grad-clip over the policy's and value model's parameters together (one
//      DataParallelOptimizer holds both: algorithms/data_parallel_optimizer.h);
//   3. with --adaptive-kl, β updated from the rollout's KL (algorithms/kl_penalty.h).
// The learning rate of every update of step s is schedule.at(s).
//
// The loop shares the trainer's conventions (algorithms/trainer.h): OUT/metrics.jsonl with one
// line per step, checkpoints in OUT/checkpoints/ (the policy as a model directory; in
// trainer_state/ the policy optimizer's tensors, "value_model.*" weights and
// "value_optimizer.*" tensors, and in state.json β and the optimizer's step count), a clean
// stop with a checkpoint on SIGINT/SIGTERM (and, on one rank, when an API critic's spending
// limit leaves a rollout unscored), and --resume continuing bit for bit (rollouts are a
// pure function of seed, step and weights). At the end the policy is saved to OUT and the value
// model, if any, to OUT/value_model.
//
// Data parallelism (TrainerOptions::comm with several ranks, e.g. `mpirun -np R rlaif ppo`;
// algorithms/ppo_data_parallel.h): each rank generates, scores and evaluates its share of every
// rollout's sequences; the rollout is then gathered on every rank, so advantages, whitening,
// β and the logged statistics are those of the whole batch, identical everywhere; each rank
// trains on its share of every micro-batch, and the optimizer averages the gradients over ranks
// (with TrainerOptions::zero_stage 1 it also shards the AdamW state). The update is thus the
// one-rank update of the whole batch. Rank 0 alone logs, draws progress and writes checkpoints
// and models; the ranks agree on a signal and stop after the same step.
//
// Metrics per step: score (mean, after the missing-EOS penalty), kl (mean Σ_t log π − log π_ref
// per response), kl_coef, entropy (per token), response_length, eos_fraction,
// non_score_reward, advantage_mean/std, explained_variance (gae), policy_loss, clip_fraction,
// approx_kl, ratio, value_loss and value_clip_fraction (gae), kl_loss (grpo), loss, grad_norm,
// lr, rollout_tokens_per_s (generated tokens over the rollout's time: generation, scoring and
// the no-grad passes), train_tokens_per_s (tokens through forward and backward over the update
// time), elapsed_s.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/ppo_rollout.h"
#include "algorithms/trainer.h"

namespace rlaif {

struct PpoModels {
  Transformer* policy = nullptr;           // trained in place
  const Transformer* reference = nullptr;  // the frozen initial policy
  Transformer* value = nullptr;            // trained in place; gae only (null otherwise)
  const Tokenizer* tokenizer = nullptr;    // the policy's (and value model's)
  RewardFunction* reward = nullptr;
};

struct PpoResult {
  int64_t steps_done = 0;
  bool interrupted = false;  // stopped by SIGINT/SIGTERM after saving a checkpoint
  int signal = 0;
  // Stopped, after saving a checkpoint, because the reward's API spending limit left a rollout
  // unscored (SpendLimitReached); why, naming the limit.
  std::string spend_limit_stop;
  double kl_coef = 0.0;                                      // β at the end
  std::vector<std::pair<std::string, double>> last_metrics;  // the last step's log line
  std::string checkpoint;  // the last checkpoint written ("" if none)
};

// Trains models.policy (and models.value) on `prompts`. From `trainer`: out_dir, steps,
// grad_accum (micro-batches per mini-batch; must divide its sequences), schedule, adamw,
// grad_clip, save_every, keep, resume, tokenizer_source, settings/identity_keys, label, comm,
// device_comm and zero_stage (eval_every is unused: PPO's own metrics are the evaluation). With
// several ranks, every rank calls this with the same arguments (models.reward may be a
// LeadRankScores on ranks other than 0 when rank 0's reward scores_on_lead_rank()). A non-finite
// loss or gradient norm stops training with an Error naming the step and the last good checkpoint.
PpoResult train_ppo(const PpoModels& models, const std::vector<std::string>& prompts,
                    const PpoOptions& options, const TrainerOptions& trainer);

}  // namespace rlaif
