#include "algorithms/reference_free.h"

#include <algorithm>
#include <cmath>

#include "algorithms/preference_metrics.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace rlaif {
namespace {

std::vector<float> host(const Variable& v) {
  return v.data().to(Device::cpu()).to_vector<float>();
}

}  // namespace

struct ReferenceFreeTask::Sums : PreferenceMetricSums {};

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
    if (sums.extra.empty()) sums.extra = {{"log_odds_ratio", 0.0}, {"log_odds_chosen", 0.0}};
    for (size_t i = 0; i < pc.size(); ++i) {
      const double ratio = log_odds(pc[i]) - log_odds(pr[i]);
      sums.extra[1].second += ratio;
      sums.extra[0].second +=
          ratio > 0 ? -std::log1p(std::exp(-ratio)) : ratio - std::log1p(std::exp(ratio));
    }
  }
  sums.has_nll = true;
  sums.nll += nll_value * static_cast<double>(n);
  for (size_t i = 0; i < pc.size(); ++i) {
    const double chosen = options_.beta * pc[i], rejected = options_.beta * pr[i];
    sums.add_pair(l[i] + nll_weight * nll_value, chosen, rejected, pc[i], pr[i]);
  }
  sums.pairs += n;
  return value;
}

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

MicroBatchResult ReferenceFreeTask::micro_batch(int64_t step, int64_t micro, double scale) {
  const std::vector<int64_t> indices = micro_batch_indices(
      order_, step, micro, options_.grad_accum, options_.batch, options_.rank, options_.ranks);
  Sums sums;
  MicroBatchResult r;
  r.loss = pair_loss(train_, indices, scale, /*backward=*/true, sums, r.tokens);
  r.metrics = sums.means("");
  return r;
}

std::vector<std::pair<std::string, double>> ReferenceFreeTask::evaluate() {
  return evaluate_in_batches<Sums>(
      static_cast<int64_t>(val_.size()), options_.batch,
      [&](const std::vector<int64_t>& indices, Sums& sums, int64_t& tokens) {
        pair_loss(val_, indices, 1.0, /*backward=*/false, sums, tokens);
      });
}

}  // namespace rlaif
