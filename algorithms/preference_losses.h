// The losses that learn from preference pairs (a prompt with a chosen and a rejected answer), as
// pure functions of per-pair scalars. Each returns one loss per pair, [N]; callers average.
//
// Reward modelling — Bradley–Terry (Bradley & Terry, 1952), as InstructGPT trains its reward
// model (Ouyang et al., 2022): P(c ≻ r) = σ(r_c − r_r), so the negative log-likelihood is
//   L_BT = −log σ(r_c − r_r − m) + C·(r_c + r_r)²
// with an optional per-pair margin m (Llama 2's "margin" loss, Touvron et al., 2023: pairs rated
// far apart must be separated by more) and an optional centring term C (Eisenstein et al., 2023;
// TRL's center_rewards_coefficient): the BT likelihood sees only differences, so the rewards'
// mean drifts freely; C pulls it to 0 so rewards are comparable across runs and usable as-is by
// PPO.
//
// Direct Preference Optimisation (Rafailov et al., 2023) trains the policy π itself against a
// frozen reference π_ref. With log-probabilities of the completions given the prompt,
//   h = (log π(c) − log π(r)) − (log π_ref(c) − log π_ref(r))
// (β·h is the difference of the implicit rewards β·log π/π_ref of chosen and rejected):
//   sigmoid  L = −log σ(βh)                                    (Rafailov et al., 2023)
//   cDPO     L = −(1−ε)·log σ(βh) − ε·log σ(−βh)                (Mitchell, 2023: labels flipped
//            with probability ε; "sigmoid" with label_smoothing ε > 0)
//   robust   L = [−(1−ε)·log σ(βh) + ε·log σ(−βh)] / (1−2ε)     (Chowdhury et al., 2024: an
//            unbiased estimate of the clean-label loss under flip rate ε < 1/2)
//   ipo      L = (h − 1/(2β))²                                  (Azar et al., 2023: regresses
//            h onto a finite target instead of pushing it to infinity; used with per-token
//            AVERAGE log-probs, as TRL does, so the target does not depend on length)
//   hinge    L = max(0, 1 − βh)                                 (Zhao et al., 2023, SLiC-HF;
//            β plays the role of 1/margin)
// Which log-probs go in (summed or averaged) is the caller's choice; dpo_uses_average_logprobs
// says which the trainer uses for each loss.
#pragma once

#include <string>

#include "autograd/variable.h"
#include "runtime/tensor.h"

namespace rlaif {

// Per-pair Bradley–Terry loss [N] from rewards r_chosen, r_rejected [N]. `margin` is [N] f32 on
// their device, or undefined for none; center_coef is C above (0 = off).
Variable bradley_terry_loss(const Variable& r_chosen, const Variable& r_rejected,
                            const Tensor& margin = Tensor(), double center_coef = 0.0);

enum class DpoLoss { sigmoid, ipo, hinge, robust };

// "sigmoid" | "ipo" | "hinge" | "robust" → DpoLoss; Error listing the choices otherwise.
DpoLoss parse_dpo_loss(const std::string& name);
const char* dpo_loss_name(DpoLoss kind);
// IPO regresses per-token averages; the others use summed log-probs.
inline bool dpo_uses_average_logprobs(DpoLoss kind) {
  return kind == DpoLoss::ipo;
}

// Per-pair DPO-family loss [N] from the log-probs of chosen and rejected completions under the
// policy and the reference, each [N] (the reference's usually carry no gradient). beta > 0;
// label_smoothing ε ∈ [0, 0.5) applies to sigmoid (cDPO) and robust, and must be 0 for ipo and
// hinge (Error otherwise: silently ignoring it would misreport the run).
Variable dpo_loss(const Variable& policy_chosen, const Variable& policy_rejected,
                  const Variable& ref_chosen, const Variable& ref_rejected, double beta,
                  DpoLoss kind, double label_smoothing = 0.0);

}  // namespace rlaif
