#include "algorithms/preference_losses.h"

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

DpoLoss parse_dpo_loss(const std::string& name) {
  if (name == "sigmoid") return DpoLoss::sigmoid;
  if (name == "ipo") return DpoLoss::ipo;
  if (name == "hinge") return DpoLoss::hinge;
  if (name == "robust") return DpoLoss::robust;
  throw Error("unknown DPO loss '", name, "': expected sigmoid, ipo, hinge or robust");
}

const char* dpo_loss_name(DpoLoss kind) {
  switch (kind) {
    case DpoLoss::sigmoid:
      return "sigmoid";
    case DpoLoss::ipo:
      return "ipo";
    case DpoLoss::hinge:
      return "hinge";
    case DpoLoss::robust:
      return "robust";
  }
  return "?";
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
  RLAIF_CHECK(eps == 0.0 || kind == DpoLoss::sigmoid || kind == DpoLoss::robust,
              "dpo_loss: label smoothing applies to the sigmoid and robust losses, not ",
              dpo_loss_name(kind));
  // h = (log π(c) − log π(r)) − (log π_ref(c) − log π_ref(r))
  Variable h = sub(sub(policy_chosen, policy_rejected), sub(ref_chosen, ref_rejected));
  const float b = static_cast<float>(beta);
  switch (kind) {
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
  }
  throw Error("dpo_loss: unknown loss kind");
}

}  // namespace rlaif
