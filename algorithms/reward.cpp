#include "algorithms/reward.h"

#include <algorithm>
#include <cmath>

#include "algorithms/preference_losses.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "kernels/backend.h"

namespace rlaif {

bool ensure_scalar_head(Transformer& model, uint64_t seed) {
  if (model.has_scalar_head()) return false;
  model.add_scalar_head();
  uint64_t index = 0;
  for (auto& [name, v] : model.parameters()) {
    if (name == "score.weight") {
      // The offset init_weights gives the head (its parameter index · 2^40).
      const float std = 1.0f / std::sqrt(static_cast<float>(model.config().hidden_size + 1));
      backend_for(model.device()).random_normal(v.data(), seed, index << 40, 0.0f, std);
      v.set_requires_grad(true);
      return true;
    }
    ++index;
  }
  throw Error("ensure_scalar_head: the model lists no score.weight after adding it");
}

namespace {

struct PairScores {
  Variable chosen, rejected;  // [n] each
  int64_t tokens = 0;
};

PairScores score_pairs(const Transformer& model, const std::vector<TokenizedPair>& pairs,
                       const std::vector<int64_t>& indices) {
  const auto n = static_cast<int64_t>(indices.size());
  SequenceBatch batch = make_pair_batch(pairs, indices, model.device());
  Variable scores = last_token_scores(model, batch);  // [2n]: chosen rows, then rejected rows
  PairScores out{slice(scores, 0, n), slice(scores, n, 2 * n), 0};
  for (int64_t len : batch.lengths) out.tokens += len;
  return out;
}

Tensor margins_of(const std::vector<TokenizedPair>& pairs, const std::vector<int64_t>& indices,
                  Device device) {
  std::vector<float> m;
  for (int64_t i : indices) m.push_back(static_cast<float>(pairs[static_cast<size_t>(i)].margin));
  return Tensor::from_vector(m, {static_cast<int64_t>(m.size())}).to(device);
}

std::vector<float> host(const Variable& v) {
  return v.data().to(Device::cpu()).to_vector<float>();
}

}  // namespace

RewardTask::RewardTask(const Transformer& model, std::vector<TokenizedPair> train,
                       std::vector<TokenizedPair> val, RewardOptions options)
    : model_(model),
      train_(std::move(train)),
      val_(std::move(val)),
      options_(options),
      order_(static_cast<int64_t>(train_.size()), options.seed) {
  RLAIF_CHECK(model_.has_scalar_head(), "rm: the model has no scalar head (score.weight)");
  RLAIF_CHECK(options_.batch > 0, "rm: --batch must be positive");
  check_rank_shard(options_.batch, options_.rank, options_.ranks, "rm");
  const int64_t context = model_.config().max_position_embeddings;
  check_pairs_fit(train_, context, model_.config().vocab_size, "rm");
  check_pairs_fit(val_, context, model_.config().vocab_size, "rm (held-out pairs)");
}

MicroBatchResult RewardTask::micro_batch(int64_t step, int64_t micro, double scale) {
  const std::vector<int64_t> indices =
      rank_shard(order_.batch(step * options_.grad_accum + micro, options_.batch), options_.rank,
                 options_.ranks);
  PairScores s = score_pairs(model_, train_, indices);
  Tensor margin = options_.use_margin ? margins_of(train_, indices, model_.device()) : Tensor();
  Variable loss = mean_all(bradley_terry_loss(s.chosen, s.rejected, margin, options_.center_coef));
  MicroBatchResult r;
  r.loss = loss.data().to(Device::cpu()).item();
  rlaif::scale(loss, static_cast<float>(scale)).backward();
  r.tokens = s.tokens;
  const std::vector<float> c = host(s.chosen), j = host(s.rejected);
  double correct = 0, margin_sum = 0, chosen_sum = 0, rejected_sum = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    correct += c[i] > j[i];
    margin_sum += c[i] - j[i];
    chosen_sum += c[i];
    rejected_sum += j[i];
  }
  const auto n = static_cast<double>(c.size());
  r.metrics = {{"accuracy", correct / n},
               {"margin", margin_sum / n},
               {"reward_chosen", chosen_sum / n},
               {"reward_rejected", rejected_sum / n}};
  return r;
}

PairMetrics RewardTask::measure(const std::vector<TokenizedPair>& pairs) const {
  NoGradGuard no_grad;
  PairMetrics m;
  const auto total = static_cast<int64_t>(pairs.size());
  for (int64_t begin = 0; begin < total; begin += options_.batch) {
    const std::vector<int64_t> indices =
        index_range(begin, std::min(total, begin + options_.batch));
    PairScores s = score_pairs(model_, pairs, indices);
    Tensor margin = options_.use_margin ? margins_of(pairs, indices, model_.device()) : Tensor();
    const std::vector<float> losses =
        host(bradley_terry_loss(s.chosen, s.rejected, margin, options_.center_coef));
    const std::vector<float> c = host(s.chosen), j = host(s.rejected);
    for (size_t i = 0; i < c.size(); ++i) {
      m.loss += losses[i];
      m.accuracy += c[i] > j[i];
      m.margin += c[i] - j[i];
    }
  }
  m.pairs = total;
  if (total > 0) {
    m.loss /= static_cast<double>(total);
    m.accuracy /= static_cast<double>(total);
    m.margin /= static_cast<double>(total);
  }
  return m;
}

std::vector<std::pair<std::string, double>> RewardTask::evaluate() {
  if (val_.empty()) return {};
  PairMetrics m = measure(val_);
  return {{"val_loss", m.loss}, {"val_accuracy", m.accuracy}, {"val_margin", m.margin}};
}

std::vector<double> score_examples(const Transformer& model,
                                   const std::vector<TokenizedExample>& examples, int64_t batch) {
  RLAIF_CHECK(model.has_scalar_head(), "score: the model has no scalar head (score.weight); ",
              "train one with `rlaif rm`");
  RLAIF_CHECK(batch > 0, "score: --batch must be positive");
  NoGradGuard no_grad;
  std::vector<double> out;
  for (size_t begin = 0; begin < examples.size(); begin += static_cast<size_t>(batch)) {
    std::vector<TokenizedExample> part(
        examples.begin() + static_cast<long>(begin),
        examples.begin() +
            static_cast<long>(std::min(examples.size(), begin + static_cast<size_t>(batch))));
    for (float r : host(last_token_scores(model, make_batch(part, model.device())))) {
      out.push_back(r);
    }
  }
  return out;
}

}  // namespace rlaif
