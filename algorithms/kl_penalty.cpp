#include "algorithms/kl_penalty.h"

#include <algorithm>
#include <cmath>

#include "runtime/error.h"

namespace rlaif {

KlEstimator parse_kl_estimator(const std::string& name) {
  if (name == "k1") return KlEstimator::k1;
  if (name == "k3") return KlEstimator::k3;
  throw Error("unknown KL estimator '", name, "': use k1 or k3");
}

const char* kl_estimator_name(KlEstimator estimator) {
  return estimator == KlEstimator::k1 ? "k1" : "k3";
}

double kl_k1(double logp, double ref_logp) {
  return logp - ref_logp;
}

double kl_k3(double logp, double ref_logp) {
  const double log_ratio = ref_logp - logp;
  // expm1 keeps the (r − 1) − log r cancellation accurate when the two are close.
  return std::expm1(log_ratio) - log_ratio;
}

double kl_estimate(KlEstimator estimator, double logp, double ref_logp) {
  return estimator == KlEstimator::k1 ? kl_k1(logp, ref_logp) : kl_k3(logp, ref_logp);
}

AdaptiveKlController::AdaptiveKlController(double initial, double target, double horizon)
    : value_(initial), target_(target), horizon_(horizon) {
  RLAIF_CHECK(target > 0 && std::isfinite(target), "adaptive KL: the target must be positive, got ",
              target);
  RLAIF_CHECK(horizon > 0 && std::isfinite(horizon),
              "adaptive KL: the horizon must be positive, got ", horizon);
  RLAIF_CHECK(initial >= 0 && std::isfinite(initial),
              "adaptive KL: the initial coefficient must be ≥ 0, got ", initial);
}

void AdaptiveKlController::update(double kl, int64_t n_sequences) {
  if (!std::isfinite(kl)) return;  // a broken batch must not poison β; the trainer stops anyway
  const double error = std::clamp(kl / target_ - 1.0, -0.2, 0.2);
  value_ *= 1.0 + error * static_cast<double>(n_sequences) / horizon_;
}

}  // namespace rlaif
