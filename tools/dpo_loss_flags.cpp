#include "tools/dpo_loss_flags.h"

#include <cstdlib>

namespace rlaif::cli {
namespace {

// --loss NAME[,NAME...] and --loss-weights W[,W...] as DpoOptions' loss terms: the first
// DPO-family loss is `loss`, the others more_losses, and sft the NLL weight.
DpoOptions loss_terms(const std::string& losses, const std::string& weights) {
  const std::vector<std::string> names = split_list(losses);
  std::vector<double> w(names.size(), 1.0);
  if (!weights.empty()) {
    const std::vector<std::string> given = split_list(weights);
    if (given.size() != names.size())
      throw UsageError("--loss-weights gives " + std::to_string(given.size()) + " weights for " +
                       std::to_string(names.size()) + " --loss terms");
    for (size_t i = 0; i < given.size(); ++i) {
      char* end = nullptr;
      w[i] = std::strtod(given[i].c_str(), &end);
      if (given[i].empty() || *end != '\0' || !(w[i] >= 0))
        throw UsageError("--loss-weights: '" + given[i] + "' is not a weight ≥ 0");
    }
  }
  DpoOptions o;
  bool first = true;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "sft") {
      if (o.sft_weight > 0) throw UsageError("--loss names sft twice");
      o.sft_weight = w[i];
      continue;
    }
    DpoLoss kind;
    try {
      kind = parse_dpo_loss(names[i]);
    } catch (const Error& e) {
      throw UsageError(std::string("--loss: ") + e.what());
    }
    if (first) {
      o.loss = kind;
      o.loss_weight = w[i];
      first = false;
    } else {
      o.more_losses.emplace_back(kind, w[i]);
    }
  }
  if (first) throw UsageError("--loss needs a preference loss beside sft, e.g. sigmoid,sft");
  return o;
}

}  // namespace

void declare_dpo_loss_flags(Flags& flags) {
  flags.option("beta", "0.1", "beta: strength of the tie to the reference")
      .option("loss", "sigmoid",
              "a loss, or several comma-separated and summed (TRL's loss_type list): " +
                  dpo_loss_names() +
                  ", and sft (the chosen answers' per-token NLL: with sigmoid, RPO)")
      .option("loss-weights", "",
              "comma-separated weights of the --loss terms, in order (default: 1 each)")
      .option("label-smoothing", "0",
              "e in [0, 0.5): assumed rate of flipped labels "
              "(sigmoid = cDPO, robust, exo_pair: 0 there means 1e-3)");
}

std::vector<std::string> dpo_loss_identity_flags() {
  return {"beta", "loss", "loss-weights", "label-smoothing"};
}

DpoOptions dpo_loss_options(const Flags& flags) {
  DpoOptions dpo = loss_terms(flags.str("loss"), flags.str("loss-weights"));
  dpo.beta = flags.number("beta");
  dpo.label_smoothing = flags.number("label-smoothing");
  if (dpo.beta <= 0) throw UsageError("--beta must be positive");
  if (dpo.label_smoothing < 0 || dpo.label_smoothing >= 0.5) {
    throw UsageError("--label-smoothing must be in [0, 0.5)");
  }
  bool smoothed = dpo_uses_label_smoothing(dpo.loss);
  for (const auto& [kind, weight] : dpo.more_losses) smoothed |= dpo_uses_label_smoothing(kind);
  if (dpo.label_smoothing > 0 && !smoothed) {
    throw UsageError("--label-smoothing applies to --loss sigmoid, robust and exo_pair only");
  }
  return dpo;
}

}  // namespace rlaif::cli
