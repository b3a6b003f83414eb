// Preference losses without a reference model: the policy's own log-probabilities of the chosen
// answer c and the rejected answer r, as pure functions of per-pair scalars. Each returns one
// loss per pair, [N]; callers average, and add the chosen answers' negative log-likelihood
//   NLL = −Σ_i log π(c_i) / Σ_i |c_i|        (per token, over the batch's chosen answers)
// where the method asks for it.
//
// ORPO (Hong et al., 2024, "ORPO: Monolithic Preference Optimization without Reference Model"),
// on per-token AVERAGE log-probs a = log π(y)/|y|, with p = exp(a) and the log odds
//   log odds(y) = log p − log(1 − p) = a − log(1 − exp(a)):
//   L = NLL − λ·log σ(log odds(c) − log odds(r))
// orpo_loss below is the second term, per pair (TRL's ORPOTrainer: λ is its beta, 0.1).
//
// CPO (Xu et al., 2024, "Contrastive Preference Optimization: Pushing the Boundaries of LLM
// Performance in Machine Translation"), DPO's losses with the reference dropped, h = log π(c) −
// log π(r), plus α·NLL (TRL's CPOTrainer: beta 0.1, cpo_alpha α = 1):
//   sigmoid  L = −(1−ε)·log σ(βh) − ε·log σ(−βh)        summed log-probs (ε: label smoothing)
//   hinge    L = max(0, 1 − βh)                          summed log-probs
//   ipo      L = (h − 1/(2β))²                           per-token average log-probs
//   simpo    L = −(1−ε)·log σ(βh − γ) − ε·log σ(γ − βh)  per-token average log-probs
// SimPO (Meng et al., 2024, "SimPO: Simple Preference Optimization with a Reference-Free
// Reward") is the last with α = 0: −log σ(β/|c|·log π(c) − β/|r|·log π(r) − γ). TRL writes it
// as −log σ(β·(h − simpo_gamma/β)), the same expression: γ here is TRL's simpo_gamma (default
// 0.5), the margin itself, not γ/β.
//
// Known values (tests/algorithms/reference_free_losses_test.cpp), a pair with log π(c) = −2,
// log π(r) = −4 (h = 2) and β = 0.1: sigmoid −log σ(0.2) = 0.598139, hinge 0.8, ipo
// (2 − 5)² = 9, simpo with γ = 0.5 −log σ(−0.3) = 0.854355. ORPO on average log-probs −0.5 and
// −1.0: log odds −0.5 − log(1 − e^−0.5) = 0.432752 and −1.0 − log(1 − e^−1) = −0.541325, their
// difference 0.974077, and with λ = 0.1 the term −0.1·log σ(0.974077) = 0.032030.
#pragma once

#include <string>

#include "autograd/variable.h"

namespace rlaif {

enum class CpoLoss { sigmoid, hinge, ipo, simpo };

// A loss's name as --loss spells it → CpoLoss; Error listing the choices.
CpoLoss parse_cpo_loss(const std::string& name);
const char* cpo_loss_name(CpoLoss kind);
// IPO and SimPO take per-token averages; sigmoid and hinge summed log-probs.
inline bool cpo_uses_average_logprobs(CpoLoss kind) {
  return kind == CpoLoss::ipo || kind == CpoLoss::simpo;
}
// Whether the loss reads label smoothing ε: sigmoid and simpo.
inline bool cpo_uses_label_smoothing(CpoLoss kind) {
  return kind == CpoLoss::sigmoid || kind == CpoLoss::simpo;
}

// log odds(c) − log odds(r) [N] from per-token average log-probs [N] each (all < 0).
Variable orpo_log_odds_ratio(const Variable& chosen_avg, const Variable& rejected_avg);
// −λ·log σ(log odds(c) − log odds(r)) [N]; lambda ≥ 0.
Variable orpo_loss(const Variable& chosen_avg, const Variable& rejected_avg, double lambda);

// Per-pair CPO-family loss [N] from the policy's log-probs of chosen and rejected answers [N]
// each (summed or averaged, as cpo_uses_average_logprobs says). beta > 0; label_smoothing
// ε ∈ [0, 0.5) for sigmoid and simpo only, gamma for simpo only (Error otherwise).
Variable cpo_loss(const Variable& chosen, const Variable& rejected, double beta, CpoLoss kind,
                  double label_smoothing = 0.0, double simpo_gamma = 0.0);

}  // namespace rlaif
