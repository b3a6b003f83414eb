// Gradient-norm clipping over a set of parameters, as PyTorch's torch.nn.utils.clip_grad_norm_
// (Pascanu et al., 2013, "On the difficulty of training recurrent neural networks"):
//   norm = √(Σ_p Σ_i g_p[i]²)                over the parameters that have a gradient
//   coef = max_norm / (norm + 1e-6)
//   g_p ← g_p · coef  for every p,           when coef < 1 (i.e. the norm exceeds max_norm)
// Each parameter's Σ g² comes from Backend::squared_norms (double accumulation, rounded to f32),
// and the per-parameter sums are added in double in the order of the list, so the norm is
// deterministic. The 1e-6 keeps a zero norm from dividing by zero and, as in PyTorch, makes a
// clipped norm land just below max_norm.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"

namespace rlaif {

// The global L2 norm of the gradients of `params` (parameters without a gradient contribute
// nothing; 0 when none has one). May be inf or NaN when a gradient holds one.
double global_grad_norm(const std::vector<std::pair<std::string, Variable>>& params);

// Scales every gradient in place so that the global norm is at most max_norm (the rule above)
// and returns the norm measured before clipping. max_norm ≤ 0 turns clipping off (the norm is
// still returned, for logging). A non-finite norm is returned as is and nothing is scaled:
// whether to skip the step or stop is the trainer's decision.
double clip_grad_norm(const std::vector<std::pair<std::string, Variable>>& params, double max_norm);

// The factor clip_grad_norm scales gradients by for a measured `norm`: coef by the rule above
// when clipping applies, else 1 (max_norm ≤ 0, a non-finite norm, or coef ≥ 1). Training loops
// do not scale the gradients in place: they pass static_cast<float>(factor) to AdamW::step as its
// grad_scale, which applies it as the update reads each gradient, with the same result bit for
// bit and without a pass over the gradients of its own.
double clip_factor(double norm, double max_norm);

}  // namespace rlaif
