// Learning-rate schedules: linear warmup, then constant, cosine or linear decay.
//
// With lr the peak rate, W = warmup, S = total_steps and step s counted from 0:
//   s < W (warmup, nanoGPT / llm.c):  at(s) = lr · (s + 1) / W
//     the first step already trains (lr/W) and step W − 1 reaches lr exactly.
//   s ≥ W, with progress p = (s − W) / (S − 1 − W), clamped to [0, 1]:
//     constant:  at(s) = lr
//     cosine:    at(s) = min_lr + ½·(lr − min_lr)·(1 + cos(π·p))   (Loshchilov & Hutter, 2017,
//                "SGDR", without restarts)
//     linear:    at(s) = lr·(1 − p) + min_lr·p
//   so the decay starts from lr at step W and reaches min_lr at the last step, S − 1; a step past
//   the end keeps min_lr. A decay of one step (S − 1 = W, e.g. S = 1 without warmup) takes lr at
//   that step (p = 0): a one-step smoke run still trains.
// Example (lr = 1, min_lr = 0.1, W = 3, S = 10): warmup 1/3, 2/3, 1; then cosine 1, 0.9397,
// 0.775, 0.55, 0.325, 0.1603, 0.1 and linear 1, 0.85, 0.7, 0.55, 0.4, 0.25, 0.1 at steps 3..9.
#pragma once

#include <cstdint>
#include <string>

namespace rlaif {

struct LrSchedule {
  std::string kind = "cosine";  // constant | cosine | linear
  double lr = 0.0;              // peak learning rate, reached at the end of warmup
  double min_lr = 0.0;          // the final rate of a decaying schedule (ignored by constant)
  int64_t warmup = 0;           // steps of linear warmup (0: start at lr)
  int64_t total_steps = 0;      // steps of the whole run (the decay ends at total_steps − 1)

  // The learning rate of 0-based step `step` (the formula above). Throws Error naming the field
  // for an unknown kind, a negative or non-finite rate, min_lr > lr, a negative warmup, a decaying
  // schedule with total_steps ≤ warmup (no step left to decay over), or a negative step.
  double at(int64_t step) const;
  // The checks of at() without a step: call once when the schedule is configured, so a bad flag
  // fails before training starts.
  void validate() const;
};

}  // namespace rlaif
