// Advantage estimators of the policy-gradient algorithms (PPO, RLOO, GRPO) and the whitening they
// share. Pure functions on host numbers, so the known answers can be checked exactly.
//
// GAE (Schulman et al., 2016, "High-Dimensional Continuous Control Using Generalized Advantage
// Estimation"), over one response of T tokens with per-token rewards r_t and values V_t, and
// V_T = 0 (the episode ends after the last token):
//   δ_t = r_t + γ·V_{t+1} − V_t,   A_t = δ_t + γλ·A_{t+1}  (A_T = 0),   R_t = A_t + V_t
// R_t is the value target (the λ-return). Example (γ = 1, λ = 0.95): r = [0, 0, 1],
// V = [0.5, 0.6, 0.7] gives δ = [0.1, 0.1, 0.3] and A = [0.46575, 0.385, 0.3].
//
// RLOO (Ahmadian et al., 2024, "Back to Basics: Revisiting REINFORCE Style Optimization for
// Learning from Human Feedback in LLMs"; Kool et al., 2019): K samples per prompt, each one's
// baseline the mean reward of the other K − 1,
//   A_i = r_i − (1 / (K−1)) Σ_{j≠i} r_j
//
// GRPO (Shao et al., 2024, "DeepSeekMath", §4.1): the group's rewards normalised,
//   A_i = (r_i − mean(r)) / (std(r) + eps)      (std with Bessel's correction, as TRL)
//
// Scores of K samples per prompt are laid out prompt-major: sample k of prompt p at p·K + k.
#pragma once

#include <cstdint>
#include <vector>

namespace rlaif {

struct GaeResult {
  std::vector<double> advantages;  // A_t
  std::vector<double> returns;     // R_t = A_t + V_t
};

// GAE over one sequence; rewards and values of equal length (Error otherwise).
GaeResult gae(const std::vector<double>& rewards, const std::vector<double>& values, double gamma,
              double lambda);

// Whitening (Huang et al., 2024, "The N+ Implementation Details of RLHF with PPO", details 9
// and 12): (x − mean) / √(var + 1e-8) over the entries where mask ≠ 0, var with Bessel's
// correction; with shift_mean = false the mean is added back (rewards keep their sign and
// offset, only their scale changes). Entries where mask = 0 are returned unchanged. An empty
// mask (all zeros) returns x.
std::vector<double> whiten(const std::vector<double>& x, const std::vector<double>& mask,
                           bool shift_mean = true);
// Over every entry.
std::vector<double> whiten(const std::vector<double>& x, bool shift_mean = true);

// Leave-one-out advantages; scores.size() must be a multiple of K ≥ 2.
std::vector<double> rloo_advantages(const std::vector<double>& scores, int64_t K);

// Group-normalised advantages; scores.size() must be a multiple of K ≥ 2. Without
// `scale_by_std`, A_i = r_i − mean(r) (Dr. GRPO, Liu et al., 2025: dividing by the group's std
// weighs questions that are almost always or almost never solved the most).
std::vector<double> grpo_advantages(const std::vector<double>& scores, int64_t K, double eps = 1e-4,
                                    bool scale_by_std = true);
// The fraction of groups of K whose scores are all equal (zero variance): their GRPO and RLOO
// advantages are 0, so they teach nothing (TRL's frac_reward_zero_std).
double zero_std_group_fraction(const std::vector<double>& scores, int64_t K);

}  // namespace rlaif
