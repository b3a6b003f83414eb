// Learning-rate schedules (see lr_schedule.h for the formulas).
#include "algorithms/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "runtime/error.h"

namespace rlaif {

void LrSchedule::validate() const {
  const bool decays = kind == "cosine" || kind == "linear";
  RLAIF_CHECK(decays || kind == "constant", "lr schedule: unknown kind '", kind,
              "' (expected constant, cosine or linear)");
  RLAIF_CHECK(std::isfinite(lr) && lr >= 0.0, "lr schedule: lr is ", lr,
              " but must be a finite number ≥ 0");
  RLAIF_CHECK(warmup >= 0, "lr schedule: warmup is ", warmup, " but must be ≥ 0");
  if (!decays) return;
  RLAIF_CHECK(std::isfinite(min_lr) && min_lr >= 0.0 && min_lr <= lr, "lr schedule: min_lr is ",
              min_lr, " but must be between 0 and lr (", lr, ")");
  RLAIF_CHECK(total_steps > warmup, "lr schedule: ", kind, " decay needs total_steps (",
              total_steps, ") > warmup (", warmup, ")");
}

double LrSchedule::at(int64_t step) const {
  validate();
  RLAIF_CHECK(step >= 0, "lr schedule: step is ", step, " but must be ≥ 0 (steps count from 0)");
  if (step < warmup) {
    return lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  }
  if (kind == "constant") return lr;
  // The decay spans steps warmup .. total_steps − 1. With a single step there (span 0) that
  // step keeps lr rather than min_lr, so a one-step smoke run still trains.
  const int64_t span = total_steps - 1 - warmup;
  const double p =
      span == 0
          ? (step > warmup ? 1.0 : 0.0)
          : std::clamp(static_cast<double>(step - warmup) / static_cast<double>(span), 0.0, 1.0);
  if (kind == "cosine") {
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(std::numbers::pi * p));
  }
  // Written as a weighted mean so both ends are exact: lr at p = 0, min_lr at p = 1.
  return lr * (1.0 - p) + min_lr * p;
}

}  // namespace rlaif
