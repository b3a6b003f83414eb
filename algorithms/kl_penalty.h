// The KL penalty of RLHF: how far the policy π has moved from the reference π_ref (the initial
// policy), estimated per sampled token, and the controller that can steer its weight.
//
// KL-penalised reward (Ziegler et al., 2019, "Fine-Tuning Language Models from Human
// Preferences"; Stiennon et al., 2020; Ouyang et al., 2022, eq. 2):
//   R(x, y) = r_φ(x, y) − β · KL(π(·|x) ‖ π_ref(·|x)),
// spread over the response's tokens as r_t = −β·kl_t, with r_φ added at the last token.
//
// Per-token estimators of KL(π ‖ π_ref) from a token sampled from π (Schulman, 2020,
// "Approximating KL Divergence", http://joschu.net/blog/kl-approx.html), with
// log r = log π_ref(y_t) − log π(y_t):
//   k1 = −log r = log π − log π_ref           unbiased, high variance, can be negative
//   k3 = (r − 1) − log r                       unbiased, ≥ 0, low variance
// Example: log π = −1, log π_ref = −1.2 gives k1 = 0.2 and k3 = e^{−0.2} − 1 + 0.2 = 0.0187308.
//
// Adaptive KL controller (Ziegler et al., 2019, §2.2; TRL's AdaptiveKLController): after each
// rollout batch of n sequences whose mean KL (summed over tokens) was KL,
//   e = clip(KL / KL_target − 1, −0.2, 0.2),   β ← β · (1 + e · n / horizon)
// so β grows while the policy drifts past the target and shrinks while it stays below.
#pragma once

#include <cstdint>
#include <string>

namespace rlaif {

enum class KlEstimator { k1, k3 };

// "k1" | "k3"; Error naming the value otherwise.
KlEstimator parse_kl_estimator(const std::string& name);
const char* kl_estimator_name(KlEstimator estimator);

double kl_k1(double logp, double ref_logp);
double kl_k3(double logp, double ref_logp);
double kl_estimate(KlEstimator estimator, double logp, double ref_logp);

class AdaptiveKlController {
 public:
  // target > 0 and horizon > 0 (Error otherwise); `initial` is the starting β.
  AdaptiveKlController(double initial, double target, double horizon = 10000.0);

  double value() const { return value_; }
  // Restores β (from a checkpoint).
  void set_value(double value) { value_ = value; }
  // One update from the batch's mean per-sequence KL over n_sequences sequences.
  void update(double kl, int64_t n_sequences);

 private:
  double value_, target_, horizon_;
};

}  // namespace rlaif
