#include "algorithms/reference_free.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace rlaif {
namespace {

std::vector<float> host(const Variable& v) {
  return v.data().to(Device::cpu()).to_vector<float>();
}

}  // namespace

struct ReferenceFreeTask::Sums {
  double loss = 0, chosen = 0, rejected = 0, accuracies = 0, margins = 0, logps_chosen = 0,
         logps_rejected = 0, nll = 0, log_odds_ratio = 0, log_odds_chosen = 0;
  int64_t pairs = 0;
  bool orpo = false;

  std::vector<std::pair<std::string, double>> means(const std::string& prefix) const {
    const double n = pairs > 0 ? static_cast<double>(pairs) : 1.0;
    std::vector<std::pair<std::string, double>> out = {
        {prefix + "rewards/chosen", chosen / n},
        {prefix + "rewards/rejected", rejected / n},
        {prefix + "rewards/accuracies", accuracies / n},
        {prefix + "rewards/margins", margins / n},
        {prefix + "logps/chosen", logps_chosen / n},
        {prefix + "logps/rejected", logps_rejected / n},
        {prefix + "nll_loss", nll / n}};
    if (orpo) {
      out.emplace_back(prefix + "log_odds_ratio", log_odds_ratio / n);
      out.emplace_back(prefix + "log_odds_chosen", log_odds_chosen / n);
    }
    return out;
  }
};

ReferenceFreeTask::ReferenceFreeTask(const Transformer& policy, std::vector<TokenizedPair> train,
                                     std::vector<TokenizedPair> val, ReferenceFreeOptions options)
    : policy_(policy),
      train_(std::move(train)),
      val_(std::move(val)),
      options_(options),
      order_(static_cast<int64_t>(train_.size()), options.seed) {
  const char* what = orpo() ? "orpo" : "cpo";
  RLAIF_CHECK(options_.batch > 0, what, ": --batch must be positive");
  check_rank_shard(options_.batch, options_.rank, options_.ranks, what);
  RLAIF_CHECK(options_.nll_weight >= 0.0, what, ": the NLL weight must be ≥ 0");
  // Validates the loss's settings once, up front, rather than at the first step.
  const Variable zero(Tensor::from_vector<float>({-1.0f}, {1}));
  if (orpo()) {
    orpo_loss(zero, zero, options_.beta);
  } else {
    cpo_loss(zero, zero, options_.beta, options_.loss, options_.label_smoothing,
             options_.loss == CpoLoss::simpo ? options_.simpo_gamma : 0.0);
  }
  const int64_t context = policy_.config().max_position_embeddings;
  check_pairs_fit(train_, context, policy_.config().vocab_size, what);
  check_pairs_fit(val_, context, policy_.config().vocab_size,
                  orpo() ? "orpo (held-out pairs)" : "cpo (held-out pairs)");
}

double ReferenceFreeTask::pair_loss(const std::vector<TokenizedPair>& pairs,
                                    const std::vector<int64_t>& indices, double scale,
                                    bool backward, Sums& sums, int64_t& tokens) const {
  const auto n = static_cast<int64_t>(indices.size());
  const SequenceBatch batch = make_pair_batch(pairs, indices, policy_.device());
  for (int64_t len : batch.lengths) tokens += len;
  // 1/|y| of every row (chosen rows, then rejected), and the chosen answers' tokens.
  std::vector<float> inverse;
  double chosen_tokens = 0;
  for (bool chosen : {true, false}) {
    for (int64_t i : indices) {
      const TokenizedPair& p = pairs[static_cast<size_t>(i)];
      const auto count = static_cast<double>((chosen ? p.chosen : p.rejected).trained_tokens());
      inverse.push_back(count > 0 ? static_cast<float>(1.0 / count) : 0.0f);
      if (chosen) chosen_tokens += count;
    }
  }
  const Variable sum = completion_logprobs(policy_, batch, /*average=*/false);
  const bool average = orpo() || cpo_uses_average_logprobs(options_.loss);
  const Variable logps =
      average ? mul(sum, Variable(Tensor::from_vector(inverse, {2 * n}).to(policy_.device())))
              : sum;
  const Variable c = slice(logps, 0, n), r = slice(logps, n, 2 * n);
  Variable losses;
  if (orpo()) {
    losses = orpo_loss(c, r, options_.beta);
  } else {
    losses = cpo_loss(c, r, options_.beta, options_.loss, options_.label_smoothing,
                      options_.loss == CpoLoss::simpo ? options_.simpo_gamma : 0.0);
  }
  // NLL = −Σ_i log π(c_i) / Σ_i |c_i|.
  const Variable nll = rlaif::scale(sum_all(slice(sum, 0, n)),
                                    static_cast<float>(-1.0 / std::max(chosen_tokens, 1.0)));
  const double nll_weight = orpo() ? 1.0 : options_.nll_weight;
  Variable loss = mean_all(losses);
  if (nll_weight > 0) loss = add(loss, rlaif::scale(nll, static_cast<float>(nll_weight)));
  const double value = loss.data().to(Device::cpu()).item();
  if (backward) rlaif::scale(loss, static_cast<float>(scale)).backward();

  const std::vector<float> pc = host(c), pr = host(r), l = host(losses);
  const double nll_value = nll.data().to(Device::cpu()).item();
  if (orpo()) {
    // log odds(y) = a − log(1 − e^a) of each side's average log-prob a, and log σ of their
    // difference: the same values orpo_loss computed, in double.
    auto log_odds = [](double a) { return a - std::log1p(-std::exp(a)); };
    for (size_t i = 0; i < pc.size(); ++i) {
      const double ratio = log_odds(pc[i]) - log_odds(pr[i]);
      sums.log_odds_chosen += ratio;
      sums.log_odds_ratio +=
          ratio > 0 ? -std::log1p(std::exp(-ratio)) : ratio - std::log1p(std::exp(ratio));
    }
  }
  sums.orpo = orpo();
  sums.nll += nll_value * static_cast<double>(n);
  for (size_t i = 0; i < pc.size(); ++i) {
    const double chosen = options_.beta * pc[i], rejected = options_.beta * pr[i];
    sums.loss += l[i] + nll_weight * nll_value;
    sums.chosen += chosen;
    sums.rejected += rejected;
    sums.accuracies += chosen > rejected;
    sums.margins += chosen - rejected;
    sums.logps_chosen += pc[i];
    sums.logps_rejected += pr[i];
  }
  sums.pairs += n;
  return value;
}

MicroBatchResult ReferenceFreeTask::micro_batch(int64_t step, int64_t micro, double scale) {
  const std::vector<int64_t> indices =
      rank_shard(order_.batch(step * options_.grad_accum + micro, options_.batch), options_.rank,
                 options_.ranks);
  Sums sums;
  MicroBatchResult r;
  r.loss = pair_loss(train_, indices, scale, /*backward=*/true, sums, r.tokens);
  r.metrics = sums.means("");
  return r;
}

std::vector<std::pair<std::string, double>> ReferenceFreeTask::evaluate() {
  if (val_.empty()) return {};
  NoGradGuard no_grad;
  Sums sums;
  int64_t tokens = 0;
  const auto total = static_cast<int64_t>(val_.size());
  for (int64_t begin = 0; begin < total; begin += options_.batch) {
    pair_loss(val_, index_range(begin, std::min(total, begin + options_.batch)), 1.0,
              /*backward=*/false, sums, tokens);
  }
  std::vector<std::pair<std::string, double>> out = {
      {"val_loss", sums.loss / static_cast<double>(sums.pairs)}};
  for (auto& m : sums.means("val_")) out.push_back(m);
  return out;
}

}  // namespace rlaif
