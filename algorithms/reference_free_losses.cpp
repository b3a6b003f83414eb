#include "algorithms/reference_free_losses.h"

#include <utility>

#include "autograd/ops.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

constexpr std::pair<CpoLoss, const char*> kCpoLosses[] = {{CpoLoss::sigmoid, "sigmoid"},
                                                          {CpoLoss::hinge, "hinge"},
                                                          {CpoLoss::ipo, "ipo"},
                                                          {CpoLoss::simpo, "simpo"}};

void check_pair(const Variable& chosen, const Variable& rejected, const char* what) {
  RLAIF_CHECK(chosen.dim() == 1 && rejected.shape() == chosen.shape(), what,
              ": log-probs must be two [N] vectors, got ", chosen.str(), " and ", rejected.str());
}

// log odds(y) = a − log(1 − exp(a)) for a per-token average log-prob a < 0.
Variable log_odds(const Variable& average) {
  return sub(average, log(affine(exp(average), -1.0f, 1.0f)));
}

// −(1−ε)·log σ(z) − ε·log σ(−z): the Bradley–Terry loss on z, labels smoothed by ε.
Variable smoothed_sigmoid_loss(const Variable& z, double eps) {
  Variable loss = scale(log_sigmoid(z), static_cast<float>(-(1.0 - eps)));
  if (eps > 0.0) loss = sub(loss, scale(log_sigmoid(neg(z)), static_cast<float>(eps)));
  return loss;
}

}  // namespace

CpoLoss parse_cpo_loss(const std::string& name) {
  for (const auto& [kind, text] : kCpoLosses) {
    if (name == text) return kind;
  }
  throw Error("unknown CPO loss '", name, "': expected one of sigmoid, hinge, ipo, simpo");
}

const char* cpo_loss_name(CpoLoss kind) {
  for (const auto& [k, text] : kCpoLosses) {
    if (k == kind) return text;
  }
  return "?";
}

Variable orpo_log_odds_ratio(const Variable& chosen_avg, const Variable& rejected_avg) {
  check_pair(chosen_avg, rejected_avg, "orpo_log_odds_ratio");
  return sub(log_odds(chosen_avg), log_odds(rejected_avg));
}

Variable orpo_loss(const Variable& chosen_avg, const Variable& rejected_avg, double lambda) {
  RLAIF_CHECK(lambda >= 0.0, "orpo_loss: lambda must be ≥ 0, got ", lambda);
  return scale(log_sigmoid(orpo_log_odds_ratio(chosen_avg, rejected_avg)),
               static_cast<float>(-lambda));
}

Variable cpo_loss(const Variable& chosen, const Variable& rejected, double beta, CpoLoss kind,
                  double label_smoothing, double simpo_gamma) {
  check_pair(chosen, rejected, "cpo_loss");
  RLAIF_CHECK(beta > 0.0, "cpo_loss: beta must be positive, got ", beta);
  const double eps = label_smoothing;
  RLAIF_CHECK(eps >= 0.0 && eps < 0.5, "cpo_loss: label smoothing must be in [0, 0.5), got ", eps);
  RLAIF_CHECK(eps == 0.0 || cpo_uses_label_smoothing(kind), "cpo_loss: label smoothing applies ",
              "to the sigmoid and simpo losses, not ", cpo_loss_name(kind));
  RLAIF_CHECK(simpo_gamma == 0.0 || kind == CpoLoss::simpo,
              "cpo_loss: gamma applies to the simpo loss, not ", cpo_loss_name(kind));
  const Variable h = sub(chosen, rejected);
  switch (kind) {
    case CpoLoss::sigmoid:
      return smoothed_sigmoid_loss(scale(h, static_cast<float>(beta)), eps);
    case CpoLoss::hinge:
      return relu(affine(h, static_cast<float>(-beta), 1.0f));
    case CpoLoss::ipo:
      return square(affine(h, 1.0f, static_cast<float>(-1.0 / (2.0 * beta))));
    case CpoLoss::simpo:
      return smoothed_sigmoid_loss(
          affine(h, static_cast<float>(beta), static_cast<float>(-simpo_gamma)), eps);
  }
  throw Error("cpo_loss: unknown loss");
}

}  // namespace rlaif
