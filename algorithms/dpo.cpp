#include "algorithms/dpo.h"

#include <algorithm>

#include "algorithms/preference_metrics.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace rlaif {
namespace {

std::vector<float> host(const Variable& v) {
  return v.data().to(Device::cpu()).to_vector<float>();
}

Variable table_slice(const std::vector<float>& table, const std::vector<int64_t>& indices,
                     Device device) {
  std::vector<float> v;
  v.reserve(indices.size());
  for (int64_t i : indices) v.push_back(table[static_cast<size_t>(i)]);
  return Variable(Tensor::from_vector(v, {static_cast<int64_t>(v.size())}).to(device));
}

// 1 / (tokens trained) of each row of a batch: per-token averages from summed log-probs.
Tensor inverse_row_tokens(const SequenceBatch& batch) {
  const Tensor mask = batch.completion_mask.to(Device::cpu());
  const int64_t rows = mask.size(0), width = mask.size(1);
  const float* m = mask.data<float>();
  std::vector<float> inverse(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double n = 0;
    for (int64_t t = 0; t < width; ++t) n += m[r * width + t];
    inverse[static_cast<size_t>(r)] = n > 0 ? static_cast<float>(1.0 / n) : 0.0f;
  }
  return Tensor::from_vector(inverse, {rows});
}

}  // namespace

struct DpoTask::Sums : PreferenceMetricSums {};

double DpoTask::pair_loss(const std::vector<TokenizedPair>& pairs, const RefLogprobs& ref,
                          const std::vector<int64_t>& indices, double scale, bool backward,
                          Sums& sums, int64_t& tokens) const {
  const auto n = static_cast<int64_t>(indices.size());
  const std::vector<std::pair<DpoLoss, double>> terms = loss_terms();
  bool want_sum = options_.sft_weight > 0, want_avg = false;
  for (const auto& [kind, weight] : terms) {
    (dpo_uses_average_logprobs(kind) ? want_avg : want_sum) = true;
  }
  SequenceBatch batch = make_pair_batch(pairs, indices, policy_.device());
  for (int64_t len : batch.lengths) tokens += len;
  // [2n] log-probs, chosen then rejected: summed, averaged, or both. With both, the averages are
  // the sums times 1/tokens (one forward pass); alone, each is its own completion_logprobs call.
  const Tensor inverse = want_sum && want_avg ? inverse_row_tokens(batch) : Tensor();
  auto logprobs = [&](const Transformer& model, Variable& sum, Variable& avg) {
    if (want_sum) sum = completion_logprobs(model, batch, false);
    if (want_avg) {
      avg = want_sum ? mul(sum, Variable(inverse.to(model.device())))
                     : completion_logprobs(model, batch, true);
    }
  };
  Variable policy_sum, policy_avg, ref_sum, ref_avg;
  logprobs(policy_, policy_sum, policy_avg);
  if (reference_.model != nullptr) {
    NoGradGuard no_grad;
    logprobs(*reference_.model, ref_sum, ref_avg);
  }
  // The four [n] log-prob vectors one loss takes.
  struct Sides {
    Variable pc, pr, rc, rr;
  };
  auto sides = [&](bool average) {
    const Variable& p = average ? policy_avg : policy_sum;
    Sides out{slice(p, 0, n), slice(p, n, 2 * n), {}, {}};
    if (reference_.model != nullptr) {
      const Variable& r = average ? ref_avg : ref_sum;
      out.rc = slice(r, 0, n);
      out.rr = slice(r, n, 2 * n);
    } else {
      out.rc = table_slice(average ? ref.chosen_avg : ref.chosen_sum, indices, policy_.device());
      out.rr =
          table_slice(average ? ref.rejected_avg : ref.rejected_sum, indices, policy_.device());
    }
    return out;
  };
  Variable losses;
  for (const auto& [kind, weight] : terms) {
    const Sides x = sides(dpo_uses_average_logprobs(kind));
    Variable term = dpo_loss(x.pc, x.pr, x.rc, x.rr, options_.beta, kind,
                             dpo_uses_label_smoothing(kind) ? options_.label_smoothing : 0.0);
    if (weight != 1.0) term = rlaif::scale(term, static_cast<float>(weight));
    losses = losses.defined() ? add(losses, term) : term;
  }
  Variable loss = mean_all(losses);
  double nll = 0.0;
  if (options_.sft_weight > 0) {
    // −Σ_i log π(c_i) / Σ_i |c_i| over this share's chosen answers.
    const std::vector<float> inv = inverse.defined() ? inverse.to_vector<float>()
                                                     : inverse_row_tokens(batch).to_vector<float>();
    double chosen_tokens = 0;
    for (int64_t i = 0; i < n; ++i) {
      chosen_tokens += inv[static_cast<size_t>(i)] > 0 ? 1.0 / inv[static_cast<size_t>(i)] : 0.0;
    }
    Variable sft = rlaif::scale(sum_all(slice(policy_sum, 0, n)),
                                static_cast<float>(-1.0 / std::max(chosen_tokens, 1.0)));
    nll = sft.data().to(Device::cpu()).item();
    loss = add(loss, rlaif::scale(sft, static_cast<float>(options_.sft_weight)));
  }
  const double value = loss.data().to(Device::cpu()).item();
  if (backward) rlaif::scale(loss, static_cast<float>(scale)).backward();

  const Sides first = sides(dpo_uses_average_logprobs(terms.front().first));
  const std::vector<float> pc = host(first.pc), pr = host(first.pr), rc = host(first.rc),
                           rr = host(first.rr), l = host(losses);
  const double sft_share = options_.sft_weight * nll;  // the loss's sft part, per pair
  sums.has_nll = options_.sft_weight > 0;
  sums.nll += nll * static_cast<double>(n);
  for (size_t i = 0; i < pc.size(); ++i) {
    // The implicit rewards β·log π/π_ref of each side.
    const double chosen = options_.beta * (static_cast<double>(pc[i]) - rc[i]);
    const double rejected = options_.beta * (static_cast<double>(pr[i]) - rr[i]);
    sums.add_pair(l[i] + sft_share, chosen, rejected, pc[i], pr[i]);
  }
  sums.pairs += n;
  return value;
}

DpoTask::DpoTask(const Transformer& policy, DpoReference reference,
                 std::vector<TokenizedPair> train, std::vector<TokenizedPair> val,
                 DpoOptions options)
    : policy_(policy),
      reference_(std::move(reference)),
      train_(std::move(train)),
      val_(std::move(val)),
      options_(options),
      order_(static_cast<int64_t>(train_.size()), options.seed) {
  RLAIF_CHECK(options_.batch > 0, "dpo: --batch must be positive");
  check_rank_shard(options_.batch, options_.rank, options_.ranks, "dpo");
  // Validates beta and label smoothing once, up front, rather than at the first step.
  Variable zero(Tensor::zeros({1}, DType::f32));
  bool smoothed = false;
  for (const auto& [kind, weight] : loss_terms()) {
    dpo_loss(zero, zero, zero, zero, options_.beta, kind,
             dpo_uses_label_smoothing(kind) ? options_.label_smoothing : 0.0);
    smoothed = smoothed || dpo_uses_label_smoothing(kind);
  }
  RLAIF_CHECK(options_.label_smoothing == 0.0 || smoothed,
              "dpo: label smoothing applies to the sigmoid, robust and exo_pair losses only");
  RLAIF_CHECK(options_.sft_weight >= 0.0, "dpo: the sft loss weight must be ≥ 0");
  const int64_t context = policy_.config().max_position_embeddings;
  check_pairs_fit(train_, context, policy_.config().vocab_size, "dpo");
  check_pairs_fit(val_, context, policy_.config().vocab_size, "dpo (held-out pairs)");
  check_reference(reference_, policy_, train_.size(), val_.size(), "dpo", "pairs");
}

std::vector<std::pair<DpoLoss, double>> DpoTask::loss_terms() const {
  std::vector<std::pair<DpoLoss, double>> terms = {{options_.loss, options_.loss_weight}};
  terms.insert(terms.end(), options_.more_losses.begin(), options_.more_losses.end());
  return terms;
}

MicroBatchResult DpoTask::micro_batch(int64_t step, int64_t micro, double scale) {
  const std::vector<int64_t> indices = micro_batch_indices(
      order_, step, micro, options_.grad_accum, options_.batch, options_.rank, options_.ranks);
  Sums sums;
  MicroBatchResult r;
  r.loss = pair_loss(train_, reference_.train, indices, scale, /*backward=*/true, sums, r.tokens);
  r.metrics = sums.means("");
  return r;
}

std::vector<std::pair<std::string, double>> DpoTask::evaluate() {
  return evaluate_in_batches<Sums>(
      static_cast<int64_t>(val_.size()), options_.batch,
      [&](const std::vector<int64_t>& indices, Sums& sums, int64_t& tokens) {
        pair_loss(val_, reference_.val, indices, 1.0, /*backward=*/false, sums, tokens);
      });
}

}  // namespace rlaif
