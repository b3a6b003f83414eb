#include "algorithms/preference_losses.h"

#include <vector>

#include <cmath>
#include <utility>

#include "autograd/ops.h"
#include "runtime/error.h"

namespace rlaif {

Variable bradley_terry_loss(const Variable& r_chosen, const Variable& r_rejected,
                            const Tensor& margin, double center_coef) {
  RLAIF_CHECK(r_chosen.shape() == r_rejected.shape() && r_chosen.dim() == 1,
              "bradley_terry_loss: rewards must be two [N] vectors, got ", r_chosen.str(), " and ",
              r_rejected.str());
  Variable diff = sub(r_chosen, r_rejected);
  if (margin.defined()) {
    RLAIF_CHECK(margin.shape() == r_chosen.shape(), "bradley_terry_loss: margin has shape ",
                shape_str(margin.shape()), ", the rewards ", shape_str(r_chosen.shape()));
    diff = sub(diff, Variable(margin));
  }
  Variable loss = neg(log_sigmoid(diff));
  if (center_coef != 0.0) {
    loss = add(loss, scale(square(add(r_chosen, r_rejected)), static_cast<float>(center_coef)));
  }
  return loss;
}

namespace {

constexpr std::pair<DpoLoss, const char*> kDpoLosses[] = {{DpoLoss::sigmoid, "sigmoid"},
                                                          {DpoLoss::ipo, "ipo"},
                                                          {DpoLoss::hinge, "hinge"},
                                                          {DpoLoss::robust, "robust"},
                                                          {DpoLoss::sigmoid_norm, "sigmoid_norm"},
                                                          {DpoLoss::sppo_hard, "sppo_hard"},
                                                          {DpoLoss::nca_pair, "nca_pair"},
                                                          {DpoLoss::exo_pair, "exo_pair"},
                                                          {DpoLoss::apo_zero, "apo_zero"},
                                                          {DpoLoss::apo_down, "apo_down"},
                                                          {DpoLoss::bco_pair, "bco_pair"}};

// σ(x) as a Variable: exp(log σ(x)).
Variable sigmoid_of(const Variable& x) {
  return exp(log_sigmoid(x));
}

}  // namespace

DpoLoss parse_dpo_loss(const std::string& name) {
  for (const auto& [kind, text] : kDpoLosses) {
    if (name == text) return kind;
  }
  throw Error("unknown DPO loss '", name, "': expected one of ", dpo_loss_names());
}

const char* dpo_loss_name(DpoLoss kind) {
  for (const auto& [k, text] : kDpoLosses) {
    if (k == kind) return text;
  }
  return "?";
}

std::string dpo_loss_names() {
  std::string out;
  for (const auto& [kind, text] : kDpoLosses) out += (out.empty() ? "" : ", ") + std::string(text);
  return out;
}

Variable dpo_loss(const Variable& policy_chosen, const Variable& policy_rejected,
                  const Variable& ref_chosen, const Variable& ref_rejected, double beta,
                  DpoLoss kind, double label_smoothing) {
  const Shape& s = policy_chosen.shape();
  RLAIF_CHECK(s.size() == 1 && policy_rejected.shape() == s && ref_chosen.shape() == s &&
                  ref_rejected.shape() == s,
              "dpo_loss: log-probs must be four [N] vectors, got ", policy_chosen.str(), ", ",
              policy_rejected.str(), ", ", ref_chosen.str(), ", ", ref_rejected.str());
  RLAIF_CHECK(beta > 0.0, "dpo_loss: beta must be positive, got ", beta);
  const double eps = label_smoothing;
  RLAIF_CHECK(eps >= 0.0 && eps < 0.5, "dpo_loss: label smoothing must be in [0, 0.5), got ", eps);
  RLAIF_CHECK(eps == 0.0 || dpo_uses_label_smoothing(kind),
              "dpo_loss: label smoothing applies to the sigmoid, robust and exo_pair losses, not ",
              dpo_loss_name(kind));
  // h = (log π(c) − log π(r)) − (log π_ref(c) − log π_ref(r))
  Variable h = sub(sub(policy_chosen, policy_rejected), sub(ref_chosen, ref_rejected));
  const float b = static_cast<float>(beta);
  // The log-ratios of each side: a = log π(c) − log π_ref(c), b = log π(r) − log π_ref(r).
  auto chosen_ratio = [&] { return sub(policy_chosen, ref_chosen); };
  auto rejected_ratio = [&] { return sub(policy_rejected, ref_rejected); };
  switch (kind) {
    case DpoLoss::sigmoid_norm:  // the caller passes per-token averages
    case DpoLoss::sigmoid: {
      Variable loss = scale(log_sigmoid(scale(h, b)), static_cast<float>(-(1.0 - eps)));
      if (eps > 0.0) {
        loss = add(loss, scale(log_sigmoid(scale(h, -b)), static_cast<float>(-eps)));
      }
      return loss;
    }
    case DpoLoss::robust: {
      // [−(1−ε)·log σ(βh) + ε·log σ(−βh)] / (1−2ε)
      const double norm = 1.0 / (1.0 - 2.0 * eps);
      Variable loss = scale(log_sigmoid(scale(h, b)), static_cast<float>(-(1.0 - eps) * norm));
      if (eps > 0.0) {
        loss = add(loss, scale(log_sigmoid(scale(h, -b)), static_cast<float>(eps * norm)));
      }
      return loss;
    }
    case DpoLoss::ipo:
      return square(affine(h, 1.0f, static_cast<float>(-1.0 / (2.0 * beta))));
    case DpoLoss::hinge:
      return relu(affine(h, -b, 1.0f));
    case DpoLoss::sppo_hard: {
      const float target = static_cast<float>(1.0 / (2.0 * beta));
      return add(square(affine(chosen_ratio(), 1.0f, -target)),
                 square(affine(rejected_ratio(), 1.0f, target)));
    }
    case DpoLoss::nca_pair: {
      Variable a = chosen_ratio(), r = rejected_ratio();
      return add(add(neg(log_sigmoid(scale(a, b))), scale(log_sigmoid(scale(a, -b)), -0.5f)),
                 scale(log_sigmoid(scale(r, -b)), -0.5f));
    }
    case DpoLoss::exo_pair: {
      const double e = eps == 0.0 ? 1e-3 : eps;
      Variable up = log_sigmoid(scale(h, b)), down = log_sigmoid(scale(h, -b));
      return add(mul(exp(up), affine(up, 1.0f, static_cast<float>(-std::log(1.0 - e)))),
                 mul(exp(down), affine(down, 1.0f, static_cast<float>(-std::log(e)))));
    }
    case DpoLoss::apo_zero:
      return add(affine(sigmoid_of(scale(chosen_ratio(), b)), -1.0f, 1.0f),
                 sigmoid_of(scale(rejected_ratio(), b)));
    case DpoLoss::apo_down:
      return add(sigmoid_of(scale(chosen_ratio(), b)),
                 affine(sigmoid_of(scale(h, b)), -1.0f, 1.0f));
    case DpoLoss::bco_pair: {
      // δ: the mean implicit reward over both sides of every pair, from the values alone.
      const std::vector<float> a = chosen_ratio().data().to(Device::cpu()).to_vector<float>(),
                               r = rejected_ratio().data().to(Device::cpu()).to_vector<float>();
      double sum = 0.0;
      for (size_t i = 0; i < a.size(); ++i) sum += beta * (static_cast<double>(a[i]) + r[i]);
      const double delta = a.empty() ? 0.0 : sum / (2.0 * static_cast<double>(a.size()));
      return bco_pair_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta, delta);
    }
  }
  throw Error("dpo_loss: unknown loss kind");
}

Variable bco_pair_loss(const Variable& policy_chosen, const Variable& policy_rejected,
                       const Variable& ref_chosen, const Variable& ref_rejected, double beta,
                       double delta) {
  const float b = static_cast<float>(beta), d = static_cast<float>(delta);
  Variable a = sub(policy_chosen, ref_chosen), r = sub(policy_rejected, ref_rejected);
  return add(neg(log_sigmoid(affine(a, b, -d))), neg(log_sigmoid(affine(r, -b, d))));
}

}  // namespace rlaif
