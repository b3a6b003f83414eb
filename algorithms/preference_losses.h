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
//   sigmoid_norm  L = −log σ(βh) on per-token AVERAGE log-probs (TRL's sigmoid_norm: the
//            length-normalised margin of SimPO, Meng et al., 2024, kept against a reference)
// The losses below see the two sides apart, through the log-ratios of each answer,
//   a = log π(c) − log π_ref(c),   b = log π(r) − log π_ref(r)   (h = a − b):
//   sppo_hard  L = (a − 1/(2β))² + (b + 1/(2β))²                (Wu et al., 2024, SPPO with hard
//            win probabilities 1 and 0: each side regresses to its own target)
//   nca_pair  L = −log σ(βa) − ½ log σ(−βa) − ½ log σ(−βb)      (Chen et al., 2024, NCA: raises
//            the chosen answer's likelihood itself, not only the margin)
//   exo_pair  L = σ(βh)·(log σ(βh) − log(1−ε)) + σ(−βh)·(log σ(−βh) − log ε)   (Ji et al., 2024,
//            EXO: the reverse KL from the smoothed labels (1−ε, ε) to the model's σ(±βh); ε = 0
//            means TRL's 1e−3, as log 0 is undefined)
//   apo_zero  L = (1 − σ(βa)) + σ(βb)                            (D'Oosterlinck et al., 2024,
//            APO-zero: chosen answers better than the policy's own: raise a, lower b)
//   apo_down  L = σ(βa) + (1 − σ(βh))                            (APO-down: chosen answers worse
//            than the policy's own: lower a, but keep the margin)
//   bco_pair  L = −log σ(βa − δ) − log σ(−(βb − δ)),  δ = the mean of βa and βb over the pairs
//            (Jung et al., 2024, BCO: a binary classifier of chosen vs rejected, its rewards
//            shifted by δ, which carries no gradient). TRL's δ is a running mean over every batch
//            seen; here it is the mean over the pairs the loss sees (one rank's share under data
//            parallelism), a function of the batch alone, so a resumed run repeats exactly.
// Known values (tests/algorithms/preference_losses_test.cpp): log π(c) = −10, log π(r) = −12,
// log π_ref(c) = −11, log π_ref(r) = −11.5, β = 0.1 (a = 1, b = −0.5, h = 1.5): sppo_hard 36.25,
// nca_pair 1.350825, exo_pair 2.505517, apo_zero 0.962523, apo_down 0.987549, bco_pair (one pair:
// δ = 0.025) 2·(−log σ(0.075)) = 1.312700. With the policy equal to the reference (a = b = 0):
// nca_pair and bco_pair 2·log 2, apo_zero and apo_down 1, sppo_hard
// 2/(2β)², exo_pair ½(log ½ − log(1−ε)) + ½(log ½ − log ε).
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

enum class DpoLoss {
  sigmoid,
  ipo,
  hinge,
  robust,
  sigmoid_norm,
  sppo_hard,
  nca_pair,
  exo_pair,
  apo_zero,
  apo_down,
  bco_pair
};

// A loss's name as --loss spells it (the enum's names) → DpoLoss; Error listing the choices.
DpoLoss parse_dpo_loss(const std::string& name);
const char* dpo_loss_name(DpoLoss kind);
// Every loss's name, comma-separated, for help texts.
std::string dpo_loss_names();
// IPO and sigmoid_norm take per-token averages; the others use summed log-probs.
inline bool dpo_uses_average_logprobs(DpoLoss kind) {
  return kind == DpoLoss::ipo || kind == DpoLoss::sigmoid_norm;
}
// Whether the loss reads label_smoothing ε: sigmoid (cDPO), robust and exo_pair.
inline bool dpo_uses_label_smoothing(DpoLoss kind) {
  return kind == DpoLoss::sigmoid || kind == DpoLoss::robust || kind == DpoLoss::exo_pair;
}

// Per-pair DPO-family loss [N] from the log-probs of chosen and rejected completions under the
// policy and the reference, each [N] (the reference's usually carry no gradient). beta > 0;
// label_smoothing ε ∈ [0, 0.5) applies to sigmoid (cDPO) and robust, and must be 0 for ipo and
// hinge (Error otherwise: silently ignoring it would misreport the run).
Variable dpo_loss(const Variable& policy_chosen, const Variable& policy_rejected,
                  const Variable& ref_chosen, const Variable& ref_rejected, double beta,
                  DpoLoss kind, double label_smoothing = 0.0);

// bco_pair with its shift δ given (dpo_loss computes δ from the pairs): for gradient checks.
Variable bco_pair_loss(const Variable& policy_chosen, const Variable& policy_rejected,
                       const Variable& ref_chosen, const Variable& ref_rejected, double beta,
                       double delta);

}  // namespace rlaif
