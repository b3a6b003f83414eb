#include "algorithms/ppo_losses.h"

#include <vector>

#include "autograd/ops.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

// A constant operand on `device` (no gradient).
Variable constant(const Tensor& t, Device device) {
  return Variable(t.device() == device ? t : t.to(device));
}

std::vector<float> host(const Tensor& t) {
  RLAIF_CHECK(t.dtype() == DType::f32, "ppo losses: expected f32, got ", t.str());
  return t.to_vector<float>();
}

double mask_count(const std::vector<float>& mask) {
  double n = 0.0;
  for (float m : mask) n += m;
  return n;
}

void check_operands(const char* what, const Variable& x, std::initializer_list<Tensor> others) {
  RLAIF_CHECK(x.dim() == 2, what, ": expected [B, T] inputs, got ", x.str());
  for (const Tensor& t : others) {
    RLAIF_CHECK(t.shape() == x.shape(), what, ": operand ", t.str(), " does not match ", x.str());
  }
}

// The loss's reduction: Σ weights·x when weights are given, else the token mean over the mask.
Variable reduce(const Variable& x, const Tensor& mask, const Tensor& weights) {
  if (!weights.defined()) return masked_token_mean(x, mask);
  RLAIF_CHECK(weights.shape() == x.shape(), "ppo losses: weights ", weights.str(), " do not match ",
              x.str());
  return weighted_token_sum(x, weights);
}

}  // namespace

LossAggregation parse_loss_aggregation(const std::string& name) {
  if (name == "dapo") return LossAggregation::dapo;
  if (name == "grpo") return LossAggregation::grpo;
  if (name == "dr_grpo") return LossAggregation::dr_grpo;
  throw Error("unknown loss aggregation '", name, "' (choose dapo, grpo or dr_grpo)");
}

const char* loss_aggregation_name(LossAggregation kind) {
  switch (kind) {
    case LossAggregation::dapo:
      return "dapo";
    case LossAggregation::grpo:
      return "grpo";
    case LossAggregation::dr_grpo:
      return "dr_grpo";
  }
  return "?";
}

std::vector<double> aggregation_weights(LossAggregation kind,
                                        const std::vector<int64_t>& response_tokens,
                                        int64_t max_new_tokens) {
  RLAIF_CHECK(!response_tokens.empty(), "aggregation_weights: no sequences");
  const auto S = static_cast<double>(response_tokens.size());
  double N = 0.0;
  for (int64_t n : response_tokens) {
    RLAIF_CHECK(n > 0, "aggregation_weights: a sequence without response tokens");
    N += static_cast<double>(n);
  }
  std::vector<double> w;
  w.reserve(response_tokens.size());
  for (int64_t n : response_tokens) {
    switch (kind) {
      case LossAggregation::dapo:
        w.push_back(1.0 / N);
        break;
      case LossAggregation::grpo:
        w.push_back(1.0 / (S * static_cast<double>(n)));
        break;
      case LossAggregation::dr_grpo:
        RLAIF_CHECK(max_new_tokens >= n, "aggregation_weights: a sequence of ", n,
                    " tokens exceeds L_max = ", max_new_tokens);
        w.push_back(1.0 / (S * static_cast<double>(max_new_tokens)));
        break;
    }
  }
  return w;
}

Variable weighted_token_sum(const Variable& x, const Tensor& weights) {
  return sum_all(masked_sum(x, weights.device() == x.device() ? weights : weights.to(x.device())));
}

Variable masked_token_mean(const Variable& x, const Tensor& mask) {
  const double n = mask_count(host(mask));
  RLAIF_CHECK(n > 0, "masked_token_mean: the mask is empty");
  return scale(sum_all(masked_sum(x, mask.device() == x.device() ? mask : mask.to(x.device()))),
               static_cast<float>(1.0 / n));
}

PolicyLoss ppo_policy_loss(const Variable& logp, const Tensor& old_logp, const Tensor& advantages,
                           const Tensor& mask, double cliprange, double cliprange_high,
                           const Tensor& weights) {
  check_operands("ppo_policy_loss", logp, {old_logp, advantages, mask});
  RLAIF_CHECK(cliprange > 0, "ppo_policy_loss: the clip range must be positive, got ", cliprange);
  const double high = cliprange_high < 0 ? cliprange : cliprange_high;
  RLAIF_CHECK(high > 0, "ppo_policy_loss: the upper clip range must be positive, got ", high);
  const Device dev = logp.device();
  Variable A = constant(advantages, dev);
  Variable ratio = exp(sub(logp, constant(old_logp, dev)));
  Variable unclipped = neg(mul(ratio, A));
  Variable clipped = neg(
      mul(clamp(ratio, static_cast<float>(1.0 - cliprange), static_cast<float>(1.0 + high)), A));
  // maximum() sends the gradient to its first operand on ties, so inside the trust region
  // (where both terms are equal) the unclipped term carries it, as it should.
  PolicyLoss out;
  out.loss = reduce(maximum(unclipped, clipped), mask, weights);

  const std::vector<float> m = host(mask), r = host(ratio.data()), lp = host(logp.data()),
                           old = host(old_logp), u = host(unclipped.data()),
                           c = host(clipped.data());
  double n = 0.0, clipped_n = 0.0, kl = 0.0, ratio_sum = 0.0;
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] == 0.0f) continue;
    n += 1.0;
    clipped_n += c[i] > u[i] ? 1.0 : 0.0;
    const double d = static_cast<double>(lp[i]) - old[i];
    kl += 0.5 * d * d;
    ratio_sum += r[i];
  }
  out.clip_fraction = clipped_n / n;
  out.approx_kl = kl / n;
  out.ratio_mean = ratio_sum / n;
  return out;
}

ValueLoss ppo_value_loss(const Variable& values, const Tensor& old_values, const Tensor& returns,
                         const Tensor& mask, double cliprange_value, const Tensor& weights) {
  check_operands("ppo_value_loss", values, {old_values, returns, mask});
  RLAIF_CHECK(cliprange_value > 0, "ppo_value_loss: the value clip range must be positive, got ",
              cliprange_value);
  const Device dev = values.device();
  Variable old = constant(old_values, dev), R = constant(returns, dev);
  const float e = static_cast<float>(cliprange_value);
  Variable v_clipped = add(old, clamp(sub(values, old), -e, e));
  Variable unclipped = square(sub(values, R));
  Variable clipped = square(sub(v_clipped, R));
  ValueLoss out;
  out.loss = scale(reduce(maximum(unclipped, clipped), mask, weights), 0.5f);

  const std::vector<float> m = host(mask), u = host(unclipped.data()), c = host(clipped.data());
  double n = 0.0, clipped_n = 0.0;
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] == 0.0f) continue;
    n += 1.0;
    clipped_n += c[i] > u[i] ? 1.0 : 0.0;
  }
  out.clip_fraction = clipped_n / n;
  return out;
}

Variable k3_kl_loss(const Variable& logp, const Tensor& ref_logp, const Tensor& mask,
                    const Tensor& weights) {
  check_operands("k3_kl_loss", logp, {ref_logp, mask});
  Variable log_ratio = sub(constant(ref_logp, logp.device()), logp);  // log π_ref − log π_θ
  Variable k3 = sub(affine(exp(log_ratio), 1.0f, -1.0f), log_ratio);
  return reduce(k3, mask, weights);
}

}  // namespace rlaif
