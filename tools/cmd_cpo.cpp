// `rlaif cpo`: contrastive preference optimisation and SimPO, no reference model
// (algorithms/reference_free.h).
#include "tools/commands.h"
#include "tools/reference_free_training.h"

namespace rlaif::cli {

int cpo_main(const std::vector<std::string>& args) {
  Flags flags("cpo",
              "Contrastive Preference Optimization (Xu et al., 2024) and SimPO (Meng et al.,\n"
              "2024): train --model on preference pairs with no reference model. With\n"
              "h = log pi(chosen) - log pi(rejected): sigmoid -log sigmoid(beta h) (with\n"
              "--label-smoothing e, conservative), hinge max(0, 1 - beta h), ipo\n"
              "(h - 1/(2 beta))^2 on per-token average log-probs, simpo -log sigmoid(beta h -\n"
              "gamma) on per-token averages; plus --cpo-alpha times the chosen answers'\n"
              "per-token NLL. SimPO as its paper and TRL run it: --loss simpo --cpo-alpha 0\n"
              "(equations: algorithms/reference_free_losses.h). Logs TRL's metrics\n"
              "(rewards/chosen, rewards/margins, nll_loss, ...).");
  flags.option("loss", "sigmoid", "sigmoid, hinge, ipo or simpo")
      .option("beta", "0.1", "beta: scale of the log-prob margin (SimPO's paper uses 2 to 2.5)")
      .option("cpo-alpha", "1", "alpha: weight of the chosen answers' per-token NLL (0: none)")
      .option("simpo-gamma", "0.5",
              "gamma: target reward margin of --loss simpo (TRL's simpo_gamma)")
      .option("label-smoothing", "0",
              "e in [0, 0.5): assumed rate of flipped labels (--loss sigmoid and simpo)");
  declare_reference_free_flags(flags);
  if (!flags.parse(args)) return 0;
  ReferenceFreeOptions options;
  options.method = ReferenceFreeMethod::cpo;
  try {
    options.loss = parse_cpo_loss(flags.str("loss"));
  } catch (const Error& e) {
    throw UsageError(std::string("--loss: ") + e.what());
  }
  options.beta = flags.number("beta");
  options.nll_weight = flags.number("cpo-alpha");
  options.simpo_gamma = flags.number("simpo-gamma");
  options.label_smoothing = flags.number("label-smoothing");
  if (!(options.beta > 0)) throw UsageError("--beta must be positive");
  if (!(options.nll_weight >= 0)) throw UsageError("--cpo-alpha must be ≥ 0");
  if (!(options.label_smoothing >= 0 && options.label_smoothing < 0.5))
    throw UsageError("--label-smoothing must be in [0, 0.5)");
  if (options.label_smoothing > 0 && !cpo_uses_label_smoothing(options.loss))
    throw UsageError("--label-smoothing applies to --loss sigmoid and simpo only");
  if (flags.given("simpo-gamma") && options.loss != CpoLoss::simpo)
    throw UsageError("--simpo-gamma applies to --loss simpo only");
  return run_reference_free(flags, options, "cpo",
                            {"loss", "beta", "cpo-alpha", "simpo-gamma", "label-smoothing"});
}

}  // namespace rlaif::cli
