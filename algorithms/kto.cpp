#include "algorithms/kto.h"

#include <algorithm>
#include <cmath>

#include "algorithms/preference_metrics.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "runtime/communicator.h"

namespace rlaif {
namespace {

std::vector<float> host(const Variable& v) {
  return v.data().to(Device::cpu()).to_vector<float>();
}

Tensor column(const std::vector<float>& values, Device device) {
  return Tensor::from_vector(values, {static_cast<int64_t>(values.size())}).to(device);
}

std::vector<float> pick(const std::vector<float>& table, const std::vector<int64_t>& indices) {
  std::vector<float> out;
  out.reserve(indices.size());
  for (int64_t i : indices) out.push_back(table[static_cast<size_t>(i)]);
  return out;
}

}  // namespace

Variable kto_loss(const Variable& policy_logps, const Variable& ref_logps,
                  const std::vector<uint8_t>& desirable, double z0, double beta,
                  double desirable_weight, double undesirable_weight) {
  const Shape& s = policy_logps.shape();
  RLAIF_CHECK(
      s.size() == 1 && ref_logps.shape() == s && static_cast<int64_t>(desirable.size()) == s[0],
      "kto_loss: log-probs must be two [N] vectors with N labels, got ", policy_logps.str(), ", ",
      ref_logps.str(), " and ", desirable.size(), " labels");
  RLAIF_CHECK(beta > 0.0, "kto_loss: beta must be positive, got ", beta);
  RLAIF_CHECK(desirable_weight >= 0.0 && undesirable_weight >= 0.0,
              "kto_loss: the weights must be ≥ 0, got ", desirable_weight, " and ",
              undesirable_weight);
  // u = β(r − z0); desirable: 1 − σ(u) = σ(−u), undesirable: 1 − σ(−u) = σ(u).
  const Variable u = affine(sub(policy_logps, ref_logps), static_cast<float>(beta),
                            static_cast<float>(-beta * z0));
  std::vector<float> sign, weight;
  for (uint8_t d : desirable) {
    sign.push_back(d ? -1.0f : 1.0f);
    weight.push_back(static_cast<float>(d ? desirable_weight : undesirable_weight));
  }
  const Device device = policy_logps.data().device();
  return mul(Variable(column(weight, device)), sigmoid(mul(Variable(column(sign, device)), u)));
}

double kto_reference_point(const std::vector<float>& policy_mismatched,
                           const std::vector<float>& ref_mismatched) {
  RLAIF_CHECK(policy_mismatched.size() == ref_mismatched.size(),
              "kto_reference_point: ", policy_mismatched.size(), " policy log-probs for ",
              ref_mismatched.size(), " reference ones");
  if (policy_mismatched.empty()) return 0.0;
  double sum = 0.0;
  for (size_t i = 0; i < policy_mismatched.size(); ++i) {
    sum += static_cast<double>(policy_mismatched[i]) - ref_mismatched[i];
  }
  return std::max(0.0, sum / static_cast<double>(policy_mismatched.size()));
}

std::vector<KtoExample> tokenize_kto_examples(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                              const std::vector<LabeledCompletion>& examples,
                                              const TruncationOptions& truncation) {
  std::vector<KtoExample> out;
  out.reserve(examples.size());
  for (const LabeledCompletion& e : examples) {
    const Conversation prompt =
        e.prompt_messages.empty() ? Conversation{{"user", e.prompt}} : e.prompt_messages;
    KtoExample k;
    k.example = tokenize_reply(tokenizer, chat, prompt, e.completion, truncation);
    k.desirable = e.desirable;
    out.push_back(std::move(k));
  }
  pair_mismatched(out, truncation.max_length);
  return out;
}

void pair_mismatched(std::vector<KtoExample>& examples, int64_t max_length) {
  const size_t n = examples.size();
  for (size_t i = 0; i < n; ++i) {
    const TokenizedExample& previous = examples[(i + n - 1) % n].example;
    TokenizedExample& m = examples[i].mismatched;
    m.prompt = examples[i].example.prompt;
    m.prompt_trained = examples[i].example.prompt_trained;
    m.completion = previous.completion;
    m.completion_cut = previous.completion_cut;
    const int64_t room = std::max<int64_t>(1, max_length - static_cast<int64_t>(m.prompt.size()));
    if (static_cast<int64_t>(m.completion.size()) > room) {
      m.completion.resize(static_cast<size_t>(room));
      m.completion_cut = true;
    }
  }
}

std::vector<TokenizedPair> kto_as_pairs(const std::vector<KtoExample>& examples) {
  std::vector<TokenizedPair> out;
  out.reserve(examples.size());
  for (const KtoExample& e : examples) out.push_back({e.example, e.mismatched, 0.0});
  return out;
}

struct KtoTask::Sums {
  double loss = 0, chosen_rewards = 0, rejected_rewards = 0, chosen_logps = 0, rejected_logps = 0,
         kl = 0;
  int64_t examples = 0, chosen = 0, rejected = 0, chunks = 0;

  int64_t count() const { return examples; }

  std::vector<std::pair<std::string, double>> means(const std::string& prefix) const {
    auto mean = [](double sum, int64_t n) { return n > 0 ? sum / static_cast<double>(n) : 0.0; };
    const double chosen_reward = mean(chosen_rewards, chosen);
    const double rejected_reward = mean(rejected_rewards, rejected);
    return {{prefix + "rewards/chosen", chosen_reward},
            {prefix + "rewards/rejected", rejected_reward},
            {prefix + "rewards/margins", chosen_reward - rejected_reward},
            {prefix + "logps/chosen", mean(chosen_logps, chosen)},
            {prefix + "logps/rejected", mean(rejected_logps, rejected)},
            {prefix + "kl", mean(kl, chunks)}};
  }
};

double KtoTask::example_loss(const std::vector<KtoExample>& examples, const RefLogprobs& ref,
                             const std::vector<int64_t>& indices, double scale, bool backward,
                             bool share_kl, Sums& sums, int64_t& tokens) const {
  std::vector<TokenizedExample> rows, mismatched;
  std::vector<uint8_t> desirable;
  for (int64_t i : indices) {
    const KtoExample& e = examples[static_cast<size_t>(i)];
    rows.push_back(e.example);
    mismatched.push_back(e.mismatched);
    desirable.push_back(e.desirable ? 1 : 0);
  }
  const Device device = policy_.device();
  const SequenceBatch batch = make_batch(rows, device);
  const SequenceBatch kl_batch = make_batch(mismatched, device);
  for (int64_t len : batch.lengths) tokens += len;
  for (int64_t len : kl_batch.lengths) tokens += len;

  const Variable policy_logps = completion_logprobs(policy_, batch);
  Variable ref_logps;
  std::vector<float> policy_kl, ref_kl;
  {
    NoGradGuard no_grad;
    policy_kl = host(completion_logprobs(policy_, kl_batch));
    if (reference_.model != nullptr) {
      ref_logps = completion_logprobs(*reference_.model, batch);
      ref_kl = host(completion_logprobs(*reference_.model, kl_batch));
    } else {
      ref_logps = Variable(column(pick(ref.chosen_sum, indices), device));
      ref_kl = pick(ref.rejected_sum, indices);
    }
  }
  double z0 = kto_reference_point(policy_kl, ref_kl);
  if (share_kl && options_.ranks > 1) {
    // The mean over every rank's share: sums and counts added up, then the clamp.
    double sum = 0.0;
    for (size_t i = 0; i < policy_kl.size(); ++i)
      sum += static_cast<double>(policy_kl[i]) - ref_kl[i];
    Tensor t = Tensor::from_vector(
        std::vector<float>{static_cast<float>(sum), static_cast<float>(policy_kl.size())}, {2});
    options_.comm->all_reduce_sum(t);
    const std::vector<float> total = t.to_vector<float>();
    z0 = total[1] > 0 ? std::max(0.0, static_cast<double>(total[0]) / total[1]) : 0.0;
  }
  const Variable losses = kto_loss(policy_logps, ref_logps, desirable, z0, options_.beta,
                                   options_.desirable_weight, options_.undesirable_weight);
  const Variable loss = mean_all(losses);
  const double value = loss.data().to(Device::cpu()).item();
  if (backward) rlaif::scale(loss, static_cast<float>(scale)).backward();

  const std::vector<float> p = host(policy_logps), r = host(ref_logps), l = host(losses);
  for (size_t i = 0; i < p.size(); ++i) {
    const double reward = options_.beta * (static_cast<double>(p[i]) - r[i]);
    sums.loss += l[i];
    if (desirable[i]) {
      sums.chosen_rewards += reward;
      sums.chosen_logps += p[i];
      ++sums.chosen;
    } else {
      sums.rejected_rewards += reward;
      sums.rejected_logps += p[i];
      ++sums.rejected;
    }
  }
  sums.examples += static_cast<int64_t>(p.size());
  sums.kl += z0;
  ++sums.chunks;
  return value;
}

KtoTask::KtoTask(const Transformer& policy, DpoReference reference, std::vector<KtoExample> train,
                 std::vector<KtoExample> val, KtoOptions options)
    : policy_(policy),
      reference_(std::move(reference)),
      train_(std::move(train)),
      val_(std::move(val)),
      options_(options),
      order_(static_cast<int64_t>(train_.size()), options.seed) {
  RLAIF_CHECK(options_.batch > 0, "kto: --batch must be positive");
  check_rank_shard(options_.batch, options_.rank, options_.ranks, "kto");
  RLAIF_CHECK(options_.ranks == 1 || options_.comm != nullptr, "kto: data parallelism over ",
              options_.ranks,
              " ranks needs their communicator (the reference point is a mean over all ranks)");
  RLAIF_CHECK(options_.beta > 0.0, "kto: --beta must be positive");
  RLAIF_CHECK(options_.desirable_weight >= 0.0 && options_.undesirable_weight >= 0.0,
              "kto: --desirable-weight and --undesirable-weight must be ≥ 0");
  const int64_t context = policy_.config().max_position_embeddings;
  check_pairs_fit(kto_as_pairs(train_), context, policy_.config().vocab_size, "kto");
  check_pairs_fit(kto_as_pairs(val_), context, policy_.config().vocab_size,
                  "kto (held-out examples)");
  check_reference(reference_, policy_, train_.size(), val_.size(), "kto", "examples");
}

MicroBatchResult KtoTask::micro_batch(int64_t step, int64_t micro, double scale) {
  const std::vector<int64_t> indices = micro_batch_indices(
      order_, step, micro, options_.grad_accum, options_.batch, options_.rank, options_.ranks);
  Sums sums;
  MicroBatchResult r;
  r.loss = example_loss(train_, reference_.train, indices, scale, /*backward=*/true,
                        /*share_kl=*/true, sums, r.tokens);
  r.metrics = sums.means("");
  return r;
}

std::vector<std::pair<std::string, double>> KtoTask::evaluate() {
  return evaluate_in_batches<Sums>(
      static_cast<int64_t>(val_.size()), options_.batch,
      [&](const std::vector<int64_t>& indices, Sums& sums, int64_t& tokens) {
        example_loss(val_, reference_.val, indices, 1.0, /*backward=*/false, /*share_kl=*/false,
                     sums, tokens);
      });
}

}  // namespace rlaif
