// The losses of PPO-style policy optimisation, on per-token quantities laid out [B, T] like a
// SequenceBatch (position t holds what concerns token t+1) and averaged over the tokens where
// `mask` is 1 (the response tokens of the micro-batch: a token-level mean, so every generated
// token weighs the same, as TRL's PPO does).
//
// Clipped policy loss (Schulman et al., 2017, "Proximal Policy Optimization Algorithms", eq. 7),
// with ρ_t = π_θ(y_t) / π_old(y_t) = exp(log π_θ − log π_old):
//   L_π = mean_t max(−A_t·ρ_t, −A_t·clip(ρ_t, 1−ε_low, 1+ε_high))
// with ε_low = ε_high = ε in PPO; DAPO (Yu et al., 2025, "clip-higher") raises ε_high alone, so
// that unlikely tokens with positive advantages can grow further before the clip cuts them off.
// Known answers (ε = 0.2): A = 2, ρ = 1.5 → −2.4;  A = −2, ρ = 0.5 → 1.6; with ε_low = 0.2,
// ε_high = 0.28: A = 2, ρ = 1.5 → −2.56;  A = −2, ρ = 0.5 → 1.6.
//
// Clipped value loss (the PPO2 baselines form; Huang et al., 2024, detail 10):
//   V_clip = V_old + clip(V − V_old, −ε_v, ε_v)
//   L_V = 0.5 · mean_t max((V − R)², (V_clip − R)²)
// Known answer: V_old = 0, V = 0.5, R = 1, ε_v = 0.2 → 0.5·max(0.25, 0.64) = 0.32.
//
// KL loss (GRPO, Shao et al., 2024, eq. 3–4: the KL enters the loss instead of the reward):
//   L_KL = mean_t k3(log π_θ, log π_ref) = mean_t [exp(log π_ref − log π_θ) − (log π_ref − log π_θ)
//   − 1]
// differentiated through log π_θ.
//
// Aggregation: how the per-token terms ℓ_it of a mini-batch of S sequences (n_i response tokens
// each, N = Σ_i n_i; L_max = --max-new-tokens) become one loss:
//   dapo     L = Σ_i Σ_t ℓ_it / N            (token-level mean: every token weighs the same; DAPO,
//            Yu et al., 2025, and TRL's PPO)
//   grpo     L = (1/S) Σ_i (1/n_i) Σ_t ℓ_it   (each sequence's mean, then the mean over sequences;
//            Shao et al., 2024: a short answer's tokens weigh more than a long one's)
//   dr_grpo  L = Σ_i Σ_t ℓ_it / (S·L_max)     (a constant normaliser; Liu et al., 2025, "Dr. GRPO":
//            no length bias, and the scale does not change with the batch's lengths)
// Known answers: two sequences whose token terms are {1, 1, 1} and {4}: dapo 7/4 = 1.75, grpo
// (1 + 4)/2 = 2.5, dr_grpo with L_max = 4: 7/8 = 0.875. Each is a weighted sum Σ w_it·ℓ_it with
// w_it = 1/N, 1/(S·n_i) or 1/(S·L_max) (aggregation_weights), so a micro-batch, or one rank's
// share of it, contributes exactly its part of the mini-batch's loss. Without weights, the
// losses below take the token-level mean over their own mask.
//
// Diagnostics (no gradient): the clip fractions (tokens whose clipped term is the larger, i.e.
// where the gradient is cut off) and the approximate KL between π_θ and π_old,
// ½·mean_t (log π_θ − log π_old)² (TRL's "approxkl").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "autograd/variable.h"
#include "runtime/tensor.h"

namespace rlaif {

enum class LossAggregation { dapo, grpo, dr_grpo };
// "dapo", "grpo" or "dr_grpo"; Error listing them otherwise.
LossAggregation parse_loss_aggregation(const std::string& name);
const char* loss_aggregation_name(LossAggregation kind);

// The weight w_i of each token of sequence i (above), for a mini-batch whose sequences have
// `response_tokens` n_i (each > 0); max_new_tokens is L_max (dr_grpo).
std::vector<double> aggregation_weights(LossAggregation kind,
                                        const std::vector<int64_t>& response_tokens,
                                        int64_t max_new_tokens);

struct PolicyLoss {
  Variable loss;               // scalar
  double clip_fraction = 0.0;  // fraction of masked tokens where clipping is active
  double approx_kl = 0.0;      // ½·mean (log π_θ − log π_old)²
  double ratio_mean = 0.0;     // mean ρ over masked tokens
};

struct ValueLoss {
  Variable loss;               // scalar
  double clip_fraction = 0.0;  // fraction of masked tokens where the clipped error is the larger
};

// logp: [B, T] log π_θ of the taken tokens (differentiable). old_logp, advantages, mask: [B, T]
// f32 tensors on logp's device (or the CPU: they are moved). Error on shape mismatch or an
// empty mask.
// cliprange_high < 0 means cliprange_high = cliprange (symmetric). `weights` ([B, T], zero off
// the mask), when defined, makes the loss Σ weights·ℓ instead of the mean over the mask; the
// diagnostics stay means over the mask.
PolicyLoss ppo_policy_loss(const Variable& logp, const Tensor& old_logp, const Tensor& advantages,
                           const Tensor& mask, double cliprange, double cliprange_high = -1.0,
                           const Tensor& weights = Tensor());

// values: [B, T] V_θ (differentiable); old_values, returns, mask: [B, T] f32 tensors; `weights`
// as for ppo_policy_loss.
ValueLoss ppo_value_loss(const Variable& values, const Tensor& old_values, const Tensor& returns,
                         const Tensor& mask, double cliprange_value,
                         const Tensor& weights = Tensor());

// mean_t k3(log π_θ, log π_ref) over the mask (or Σ weights·k3); ref_logp, mask: [B, T] f32.
Variable k3_kl_loss(const Variable& logp, const Tensor& ref_logp, const Tensor& mask,
                    const Tensor& weights = Tensor());

// Σ_t mask·x / Σ_t mask over all of x ([B, T]): the token-level mean the losses take by default.
Variable masked_token_mean(const Variable& x, const Tensor& mask);
// Σ weights·x over all of x ([B, T]).
Variable weighted_token_sum(const Variable& x, const Tensor& weights);

}  // namespace rlaif
