// AdamW: the optimizer every trainer in rlaif uses.
//
// AdamW (Loshchilov & Hutter, 2019, "Decoupled Weight Decay Regularization") is Adam (Kingma &
// Ba, 2015, "Adam: A Method for Stochastic Optimization") with weight decay applied to the
// parameter itself instead of being added to the gradient. For each parameter θ with gradient g,
// at step t (1-based):
//   θ ← θ·(1 − lr·wd)
//   m ← β1·m + (1 − β1)·g;   v ← β2·v + (1 − β2)·g²
//   θ ← θ − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
// The per-element arithmetic is Backend::adamw_step (kernels/backend.h), which follows PyTorch's
// torch.optim.AdamW. This class owns the state around it:
// - Moments m, v: f32, on the parameter's device, zero at the start.
// - Weight decay only for parameters of 2+ dimensions (matrices and embeddings), never for
//   biases or norm gains (nanoGPT's rule: decaying a gain pulls it towards 0, not towards
//   "no effect").
// - A master copy: a parameter that is not f32 (bf16 on the GPU) gets an f32 copy; updates are
//   computed on it and rounded into the parameter, so small updates are not lost to bf16's 8-bit
//   mantissa. It is taken from the parameter at construction (and replaced by load_state), so
//   weights changed behind the optimizer's back are overwritten by the next step.
// - One global step count t for bias correction (llm.c's convention). A parameter without a
//   gradient is skipped by step() (its weights and moments are left alone) but t still advances,
//   so if it gets gradients later its bias correction uses the global t. PyTorch counts steps per
//   parameter instead; the two agree whenever every parameter gets a gradient each step.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"
#include "kernels/backend.h"
#include "runtime/tensor.h"

namespace rlaif {

// nanoGPT's / GPT-3's defaults (PyTorch's are β2 = 0.999, weight_decay = 0.01).
struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;  // for parameters of 2+ dimensions only
};

// The hyperparameters of step `step` at learning rate lr, for Backend::adamw_steps (weight_decay
// 0: each entry carries its parameter's own).
AdamWHyper adamw_hyper(const AdamWOptions& options, double lr, int64_t step);

class AdamW {
 public:
  // `params`: the trainable parameters with unique names (the names key the checkpoint state).
  // Throws Error naming the parameter for an undefined variable, a non-float dtype, a repeated
  // name or a variable listed twice (it would be updated twice), and naming the field for
  // options outside 0 ≤ β < 1, eps ≥ 0, weight_decay ≥ 0.
  AdamW(std::vector<std::pair<std::string, Variable>> params, AdamWOptions options = {});

  // One update of every parameter that has a gradient, with learning rate `lr` (finite, ≥ 0,
  // else Error). Increments step_count() first, so the first call uses t = 1. Gradients are
  // read, not cleared (call zero_grad()). grad_scale: gradient clipping's factor
  // (static_cast<float>(clip_factor(...)), algorithms/grad_clip.h), applied to each gradient as
  // it is read: bitwise the update after clip_grad_norm's in-place scaling, with the gradients
  // left as they were. One Backend::adamw_steps call per device updates every parameter.
  void step(double lr, float grad_scale = 1.0f);
  // The number of step() calls so far (t of the last update); restored by load_state.
  int64_t step_count() const { return step_count_; }
  // How many parameters the last step() updated (those with a gradient): a trainer can check
  // it against params().size() to catch a parameter the loss never reaches.
  int64_t updated_last_step() const { return updated_last_step_; }
  // Drops every parameter's gradient.
  void zero_grad();

  const std::vector<std::pair<std::string, Variable>>& params() const { return params_; }
  const AdamWOptions& options() const { return options_; }
  // The weight decay applied to parameter i (options().weight_decay or 0, by the rule above).
  double weight_decay_of(size_t i) const { return slots_.at(i).weight_decay; }

  // The constructor's checks of parameters and options (Errors as above), for holders of
  // AdamW-format state that do not construct an AdamW (a sharded optimizer).
  static void check(const std::vector<std::pair<std::string, Variable>>& params,
                    const AdamWOptions& options);
  // The weight decay `p` gets under the rule above.
  static double weight_decay_for(const Variable& p, const AdamWOptions& options) {
    return p.dim() >= 2 ? options.weight_decay : 0.0;
  }

  // Checkpoint support. state() returns host copies of the optimizer's tensors, in parameter
  // order: "exp_avg.<name>" (m), "exp_avg_sq.<name>" (v) and, for parameters with a master copy,
  // "master.<name>"; all f32, each of its parameter's shape. Save step_count() beside them.
  std::vector<std::pair<std::string, Tensor>> state() const;
  // Restores what state() returned (any device) and the step count. Every expected tensor must
  // be present exactly once, f32, with its parameter's shape, and there must be no other; else
  // Error naming the offending tensor, and nothing is changed. Parameters are not touched: load
  // the model weights separately (with a master copy they are its rounding anyway).
  void load_state(const std::vector<std::pair<std::string, Tensor>>& state, int64_t step_count);

 private:
  struct Slot {
    Tensor m, v, master;  // master: undefined for f32 parameters
    double weight_decay = 0.0;
  };
  // The names and tensors state() produces, in order, as views of the live state.
  std::vector<std::pair<std::string, Tensor>> named_state() const;

  std::vector<std::pair<std::string, Variable>> params_;
  std::vector<Slot> slots_;  // slots_[i] belongs to params_[i]
  AdamWOptions options_;
  int64_t step_count_ = 0;
  int64_t updated_last_step_ = 0;
};

// The checks of AdamW::load_state, for any holder of AdamW-format state: `state` must hold every
// name of `expected` exactly once, f32, with the expected shape, and nothing else; else Error
// naming the offending tensor (prefixed by `who`). Returns, for each expected entry in order, the
// tensor of `state` that matches it.
std::vector<const Tensor*> match_optimizer_state(
    const char* who, const std::vector<std::pair<std::string, Shape>>& expected,
    const std::vector<std::pair<std::string, Tensor>>& state);

}  // namespace rlaif
