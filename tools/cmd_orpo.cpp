// `rlaif orpo`: odds-ratio preference optimisation, SFT and preference in one loss, no reference
// model (algorithms/reference_free.h).
#include "tools/commands.h"
#include "tools/reference_free_training.h"

namespace rlaif::cli {

int orpo_main(const std::vector<std::string>& args) {
  Flags flags("orpo",
              "Odds Ratio Preference Optimization (Hong et al., 2024): train --model on\n"
              "preference pairs with no reference model. With a = the per-token average\n"
              "log-prob of an answer and log odds = a - log(1 - exp(a)), the loss is the chosen\n"
              "answers' per-token NLL - lambda log sigmoid(log odds(chosen) - log odds(rejected))\n"
              "(equations: algorithms/reference_free_losses.h). Logs TRL's metrics\n"
              "(rewards/chosen, rewards/margins, nll_loss, log_odds_ratio, log_odds_chosen, ...).");
  flags.option("beta", "0.1", "lambda: weight of the odds-ratio term against the NLL (TRL's beta)");
  declare_reference_free_flags(flags);
  if (!flags.parse(args)) return 0;
  ReferenceFreeOptions options;
  options.method = ReferenceFreeMethod::orpo;
  options.beta = flags.number("beta");
  if (!(options.beta >= 0)) throw UsageError("--beta must be ≥ 0");
  return run_reference_free(flags, options, "orpo", {"beta"});
}

}  // namespace rlaif::cli
