#include "algorithms/ppo_rollout.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "algorithms/advantages.h"
#include "algorithms/ppo_data_parallel.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "io/model_dir.h"
#include "io/spend_meter.h"
#include "model/continuous_generation.h"
#include "model/generate.h"
#include "runtime/communicator.h"
#include "runtime/rng.h"

namespace rlaif {

AdvantageKind parse_advantage_kind(const std::string& name) {
  if (name == "gae") return AdvantageKind::gae;
  if (name == "rloo") return AdvantageKind::rloo;
  if (name == "grpo") return AdvantageKind::grpo;
  throw Error("unknown advantage estimator '", name, "': use gae, rloo or grpo");
}

const char* advantage_kind_name(AdvantageKind kind) {
  switch (kind) {
    case AdvantageKind::gae:
      return "gae";
    case AdvantageKind::rloo:
      return "rloo";
    case AdvantageKind::grpo:
      return "grpo";
  }
  return "?";
}

void PpoOptions::validate() const {
  RLAIF_CHECK(batch_prompts > 0, "--batch (prompts per step) must be positive");
  RLAIF_CHECK(samples_per_prompt > 0, "--samples-per-prompt must be positive");
  RLAIF_CHECK(advantage == AdvantageKind::gae || samples_per_prompt >= 2, "--advantage ",
              advantage_kind_name(advantage),
              " compares samples of one prompt: --samples-per-prompt must be at least 2");
  RLAIF_CHECK(kl_coef >= 0 && std::isfinite(kl_coef), "--kl-coef must be ≥ 0");
  RLAIF_CHECK(adaptive_kl_target >= 0, "--adaptive-kl must be ≥ 0 (0 = a fixed coefficient)");
  RLAIF_CHECK(cliprange > 0 && cliprange_value > 0,
              "--cliprange and --cliprange-value must be positive");
  RLAIF_CHECK(cliprange_high < 0 || cliprange_high > 0, "--clip-high must be positive");
  RLAIF_CHECK(vf_coef >= 0, "--vf-coef must be ≥ 0");
  RLAIF_CHECK(gamma >= 0 && gamma <= 1 && lambda >= 0 && lambda <= 1,
              "--gamma and --lambda must be in [0, 1]");
  RLAIF_CHECK(ppo_epochs > 0 && mini_batches > 0,
              "--ppo-epochs and --mini-batches must be positive");
  RLAIF_CHECK(sequences_per_step() % mini_batches == 0, "--mini-batches ", mini_batches,
              " must divide the ", sequences_per_step(),
              " sequences of a step (--batch × --samples-per-prompt)");
  RLAIF_CHECK(max_new_tokens > 0, "--max-new-tokens must be positive");
  RLAIF_CHECK(
      temperature > 0 && std::isfinite(temperature),
      "--temperature must be positive (PPO needs the sampling distribution's probabilities)");
  RLAIF_CHECK(max_prompt_length > 0, "--max-prompt-length must be positive");
  RLAIF_CHECK(forward_batch > 0, "the forward batch must be positive");
}

int64_t Rollout::response_tokens() const {
  int64_t n = 0;
  for (const Sample& s : samples) n += static_cast<int64_t>(s.tokens.completion.size());
  return n;
}

std::vector<int64_t> rollout_prompt_indices(int64_t step, int64_t batch_prompts, int64_t n_prompts,
                                            uint64_t seed) {
  RLAIF_CHECK(n_prompts > 0, "ppo: no prompts");
  std::vector<int64_t> out;
  std::vector<int64_t> perm;
  int64_t perm_epoch = -1;
  for (int64_t p = step * batch_prompts; p < (step + 1) * batch_prompts; ++p) {
    const int64_t epoch = p / n_prompts;
    if (epoch != perm_epoch) {
      perm.resize(static_cast<size_t>(n_prompts));
      std::iota(perm.begin(), perm.end(), int64_t{0});
      // Epoch e's own Philox range (as SFT's data order), so any epoch is drawn directly.
      Generator gen(seed, (static_cast<uint64_t>(epoch) + 1) << 40);
      for (int64_t i = n_prompts - 1; i > 0; --i) {
        const auto j = static_cast<int64_t>(gen.below(static_cast<uint64_t>(i + 1)));
        std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
      }
      perm_epoch = epoch;
    }
    out.push_back(perm[static_cast<size_t>(p % n_prompts)]);
  }
  return out;
}

Variable response_logprobs(const Transformer& model, const SequenceBatch& batch, double temperature,
                           Tensor* entropy) {
  const int64_t B = batch.rows(), T = batch.width();
  // Untrained positions hold kIgnoreIndex, which gather_logprobs rejects: any id will do there.
  std::vector<int32_t> targets = batch.targets.to(Device::cpu()).to_vector<int32_t>();
  for (auto& t : targets) t = t == kIgnoreIndex ? 0 : t;
  // [B·T, V], or [B·T, Vp] with masked padding (whose log-probs and entropy terms are 0).
  Variable logits = model.masked_logits(model.hidden_states(batch.input));
  if (temperature != 1.0) logits = scale(logits, static_cast<float>(1.0 / temperature));
  Variable logp = gather_logprobs(logits, Tensor::from_vector(targets, {B * T}).to(model.device()));
  if (entropy != nullptr) {
    NoGradGuard no_grad;
    Variable log_probs = log_softmax(logits.detach());
    Variable h = neg(sum(mul(exp(log_probs), log_probs), -1));  // −Σ p·log p per position
    *entropy = reshape(h, {B, T}).data().to(Device::cpu());
  }
  return reshape(logp, {B, T});
}

Variable position_values(const Transformer& value_model, const SequenceBatch& batch) {
  RLAIF_CHECK(value_model.has_scalar_head(), "ppo: the value model has no score head");
  return reshape(value_model.scalar_head(value_model.hidden_states(batch.input)),
                 {batch.rows(), batch.width()});
}

SequenceBatch sample_batch(const std::vector<const Sample*>& samples, Device device,
                           int32_t pad_id) {
  std::vector<TokenizedExample> examples;
  examples.reserve(samples.size());
  for (const Sample* s : samples) examples.push_back(s->tokens);
  return make_batch(examples, device, pad_id);
}

Tensor per_token_tensor(const std::vector<const Sample*>& samples,
                        std::vector<float> Sample::*field, int64_t width, Device device) {
  const int64_t B = static_cast<int64_t>(samples.size());
  std::vector<float> out(static_cast<size_t>(B * width), 0.0f);
  for (int64_t b = 0; b < B; ++b) {
    const Sample& s = *samples[static_cast<size_t>(b)];
    const std::vector<float>& v = s.*field;
    const int64_t start = static_cast<int64_t>(s.tokens.prompt.size()) - 1;
    RLAIF_CHECK(
        v.size() == s.tokens.completion.size() && start + static_cast<int64_t>(v.size()) <= width,
        "per_token_tensor: sample ", b, " has ", v.size(), " values for ",
        s.tokens.completion.size(), " response tokens");
    std::copy(v.begin(), v.end(), out.begin() + b * width + start);
  }
  return Tensor::from_vector(out, {B, width}).to(device);
}

Tensor per_token_constant(const std::vector<const Sample*>& samples,
                          const std::vector<double>& values, int64_t width, Device device) {
  RLAIF_CHECK(values.size() == samples.size(), "per_token_constant: ", values.size(),
              " values for ", samples.size(), " samples");
  const int64_t B = static_cast<int64_t>(samples.size());
  std::vector<float> out(static_cast<size_t>(B * width), 0.0f);
  for (int64_t b = 0; b < B; ++b) {
    const Sample& s = *samples[static_cast<size_t>(b)];
    const int64_t start = static_cast<int64_t>(s.tokens.prompt.size()) - 1;
    const auto n = static_cast<int64_t>(s.tokens.completion.size());
    RLAIF_CHECK(start + n <= width, "per_token_constant: sample ", b, " does not fit width ",
                width);
    std::fill(out.begin() + b * width + start, out.begin() + b * width + start + n,
              static_cast<float>(values[static_cast<size_t>(b)]));
  }
  return Tensor::from_vector(out, {B, width}).to(device);
}

namespace {

// The response positions' entries of a [B, T] host tensor, per row.
std::vector<float> response_entries(const std::vector<float>& all, int64_t T, int64_t row,
                                    const Sample& s) {
  const int64_t start = row * T + static_cast<int64_t>(s.tokens.prompt.size()) - 1;
  return {all.begin() + start,
          all.begin() + start + static_cast<int64_t>(s.tokens.completion.size())};
}

std::vector<float> host(const Variable& v) {
  return v.data().to(Device::cpu()).to_vector<float>();
}

// Scores samples [first, end) with `reward` and applies the missing-EOS penalty.
void score_samples(Rollout& rollout, size_t first, size_t end, RewardFunction& reward,
                   const std::vector<std::string>& prompts, const PpoOptions& options) {
  std::vector<std::string> prompt_texts, completions;
  for (size_t r = first; r < end; ++r) {
    prompt_texts.push_back(prompts[static_cast<size_t>(rollout.samples[r].prompt_index)]);
    completions.push_back(rollout.samples[r].completion);
  }
  const std::vector<double> scores = reward.score(prompt_texts, completions);
  RLAIF_CHECK(scores.size() == end - first, "ppo: the reward function returned ", scores.size(),
              " scores for ", end - first, " completions");
  for (size_t r = first; r < end; ++r) {
    Sample& s = rollout.samples[r];
    const double score = scores[r - first];
    RLAIF_CHECK(std::isfinite(score), "ppo: the reward function scored completion ", r, " of step ",
                rollout.step + 1, " as ", score);
    s.score = score - (s.eos ? 0.0 : options.missing_eos_penalty);
  }
}

}  // namespace

Rollout collect_rollout(const RolloutModels& models, const std::vector<std::string>& prompts,
                        int64_t step, const PpoOptions& options, Communicator* comm) {
  RLAIF_CHECK(models.policy && models.reference && models.tokenizer && models.reward,
              "collect_rollout: a model, the tokenizer or the reward is missing");
  RLAIF_CHECK(options.advantage != AdvantageKind::gae || models.value,
              "collect_rollout: gae needs a value model");
  const auto start_time = std::chrono::steady_clock::now();
  SingleProcessCommunicator alone;
  Communicator& ranks = comm != nullptr ? *comm : alone;
  const Tokenizer& tok = *models.tokenizer;
  const int64_t K = options.samples_per_prompt, R = options.sequences_per_step();
  const int32_t pad = tok.pad_id() >= 0 ? tok.pad_id() : 0;
  Rollout rollout;
  rollout.step = step;
  rollout.samples.resize(static_cast<size_t>(R));
  // Every rank lays out every sequence's prompt (cheap, and the same everywhere); each generates
  // and evaluates only its own range.
  const std::vector<int64_t> indices = rollout_prompt_indices(
      step, options.batch_prompts, static_cast<int64_t>(prompts.size()), options.seed);
  for (size_t p = 0; p < indices.size(); ++p) {
    std::vector<int32_t> ids = tokenize_prompt(
        tok, options.chat, prompts[static_cast<size_t>(indices[p])], options.max_prompt_length);
    for (int64_t k = 0; k < K; ++k) {
      Sample& s = rollout.samples[p * static_cast<size_t>(K) + static_cast<size_t>(k)];
      s.prompt_index = indices[p];
      s.tokens.prompt = ids;
    }
  }
  const SequenceRange mine = rank_sequences(R, ranks.rank(), ranks.size());
  const auto first = static_cast<size_t>(mine.first);
  const auto last = static_cast<size_t>(mine.first + mine.count);

  GenerationOptions gen;
  gen.max_new_tokens = options.max_new_tokens;
  gen.sampling.temperature = static_cast<float>(options.temperature);
  gen.sampling.seed = options.seed;
  // Every EOS the model declares (config.json, the tokenizer, generation_config.json).
  gen.eos_ids = generation_stop_ids(models.policy->config(), tok);
  const size_t chunk = static_cast<size_t>(options.forward_batch);
  // Seconds since `since`, for the rollout's split (each part ends by reading results back to the
  // host, so the device's work is inside it).
  auto seconds_since = [](std::chrono::steady_clock::time_point since) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
  };
  auto part_start = std::chrono::steady_clock::now();
  {
    // This rank's sequences, `chunk` decoded at a time with continuous batching: a sequence that
    // ends at EOS hands its row to the next (model/continuous_generation.h), and each gets the
    // tokens it would alone.
    std::vector<std::vector<int32_t>> mine_prompts;
    std::vector<uint64_t> streams;
    const int64_t context = models.policy->config().max_position_embeddings;
    for (size_t r = first; r < last; ++r) {
      const Sample& s = rollout.samples[r];
      RLAIF_CHECK(static_cast<int64_t>(s.tokens.prompt.size()) < context, "ppo: prompt ",
                  s.prompt_index, " (", s.tokens.prompt.size(),
                  " tokens) leaves no room to generate in the model's context of ", context,
                  ": lower --max-prompt-length");
      mine_prompts.push_back(s.tokens.prompt);
      streams.push_back(static_cast<uint64_t>(step * R) + r);
    }
    generate_continuously(*models.policy, mine_prompts, gen, streams, static_cast<int64_t>(chunk),
                          [&](size_t i, Generation g) {
                            Sample& s = rollout.samples[first + i];
                            s.tokens.completion = std::move(g.tokens);
                            s.eos = g.stopped_at_eos;
                            s.completion = tok.decode(s.tokens.completion);
                          });
  }
  // With several ranks, an API critic is asked by rank 0 for every sequence once they are
  // gathered (below); any other reward scores each rank's own.
  const bool lead_scores = ranks.size() > 1 && models.reward->scores_on_lead_rank();
  rollout.generate_seconds = seconds_since(part_start);
  part_start = std::chrono::steady_clock::now();
  if (!lead_scores) score_samples(rollout, first, last, *models.reward, prompts, options);
  rollout.score_seconds = seconds_since(part_start);

  part_start = std::chrono::steady_clock::now();
  {
    NoGradGuard no_grad;
    for (size_t begin = first; begin < last; begin += chunk) {
      const size_t end = std::min(last, begin + chunk);
      std::vector<const Sample*> part;
      for (size_t r = begin; r < end; ++r) part.push_back(&rollout.samples[r]);
      SequenceBatch batch = sample_batch(part, models.policy->device(), pad);
      const int64_t T = batch.width();
      Tensor entropy;
      const std::vector<float> logp =
          host(response_logprobs(*models.policy, batch, options.temperature, &entropy));
      const std::vector<float> ent = entropy.to_vector<float>();
      const std::vector<float> ref =
          host(response_logprobs(*models.reference, batch, options.temperature));
      std::vector<float> values;
      if (models.value != nullptr) values = host(position_values(*models.value, batch));
      for (size_t r = begin; r < end; ++r) {
        Sample& s = rollout.samples[r];
        const int64_t row = static_cast<int64_t>(r - begin);
        s.logprobs = response_entries(logp, T, row, s);
        s.ref_logprobs = response_entries(ref, T, row, s);
        if (!values.empty()) s.values = response_entries(values, T, row, s);
        const std::vector<float> h = response_entries(ent, T, row, s);
        s.entropy = std::accumulate(h.begin(), h.end(), 0.0);
      }
    }
  }
  rollout.evaluate_seconds = seconds_since(part_start);
  if (ranks.size() > 1) {
    gather_rollout(rollout, ranks, tok);
    if (lead_scores) {
      std::string stopped;
      part_start = std::chrono::steady_clock::now();
      if (ranks.rank() == 0) {
        try {
          score_samples(rollout, 0, rollout.samples.size(), *models.reward, prompts, options);
        } catch (const SpendLimitReached& e) {
          stopped = e.what();
        }
      }
      // Every rank stops together at rank 0's spending limit; the others would otherwise wait in
      // the broadcast for scores that never come.
      stopped = broadcast_scores(rollout, ranks, stopped);
      rollout.score_seconds = seconds_since(part_start);
      if (!stopped.empty()) throw SpendLimitReached(stopped);
    }
  }
  rollout.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return rollout;
}

void assign_advantages(Rollout& rollout, const PpoOptions& options, double kl_coef) {
  const int64_t K = options.samples_per_prompt;
  std::vector<double> sequence_reward;
  for (Sample& s : rollout.samples) {
    const size_t L = s.tokens.completion.size();
    s.kl.assign(L, 0.0f);
    double kl_sum = 0.0;
    for (size_t t = 0; t < L; ++t) {
      s.kl[t] =
          static_cast<float>(kl_estimate(options.kl_estimator, s.logprobs[t], s.ref_logprobs[t]));
      kl_sum += s.kl[t];
    }
    s.rewards.assign(L, 0.0f);
    if (options.advantage != AdvantageKind::grpo) {
      for (size_t t = 0; t < L; ++t) s.rewards[t] = static_cast<float>(-kl_coef * s.kl[t]);
    }
    s.rewards[L - 1] += static_cast<float>(s.score);
    sequence_reward.push_back(options.advantage == AdvantageKind::rloo ? s.score - kl_coef * kl_sum
                                                                       : s.score);
  }

  if (options.advantage != AdvantageKind::gae) {
    const std::vector<double> A =
        options.advantage == AdvantageKind::rloo
            ? rloo_advantages(sequence_reward, K)
            : grpo_advantages(sequence_reward, K, 1e-4, options.scale_rewards);
    for (size_t i = 0; i < rollout.samples.size(); ++i) {
      Sample& s = rollout.samples[i];
      s.advantages.assign(s.tokens.completion.size(), static_cast<float>(A[i]));
      s.returns.clear();
    }
    return;
  }

  // gae: the per-token arrays of all samples flattened, so whitening sees the whole batch.
  std::vector<double> rewards;
  for (const Sample& s : rollout.samples)
    rewards.insert(rewards.end(), s.rewards.begin(), s.rewards.end());
  if (options.whiten_rewards) rewards = whiten(rewards, /*shift_mean=*/false);
  std::vector<double> advantages;
  size_t at = 0;
  for (Sample& s : rollout.samples) {
    const size_t L = s.tokens.completion.size();
    RLAIF_CHECK(s.values.size() == L, "assign_advantages: gae needs the values of every token");
    std::vector<double> r(rewards.begin() + static_cast<long>(at),
                          rewards.begin() + static_cast<long>(at + L));
    GaeResult g = gae(r, std::vector<double>(s.values.begin(), s.values.end()), options.gamma,
                      options.lambda);
    s.returns.assign(g.returns.begin(), g.returns.end());
    advantages.insert(advantages.end(), g.advantages.begin(), g.advantages.end());
    at += L;
  }
  advantages = whiten(advantages, /*shift_mean=*/true);
  at = 0;
  for (Sample& s : rollout.samples) {
    const size_t L = s.tokens.completion.size();
    s.advantages.assign(advantages.begin() + static_cast<long>(at),
                        advantages.begin() + static_cast<long>(at + L));
    at += L;
  }
}

std::vector<std::pair<std::string, double>> rollout_metrics(const Rollout& rollout,
                                                            const PpoOptions& options,
                                                            double kl_coef) {
  const double n = static_cast<double>(rollout.samples.size());
  double score = 0, kl = 0, penalty = 0, entropy = 0, length = 0, eos = 0;
  double tokens = 0, adv = 0, adv_sq = 0;
  std::vector<double> returns, errors;
  for (const Sample& s : rollout.samples) {
    score += s.score;
    double k1 = 0, kl_pen = 0;
    for (size_t t = 0; t < s.logprobs.size(); ++t) {
      k1 += kl_k1(s.logprobs[t], s.ref_logprobs[t]);
      kl_pen += t < s.kl.size() ? s.kl[t] : 0.0;
    }
    kl += k1;
    penalty += -kl_coef * kl_pen;
    entropy += s.entropy;
    length += static_cast<double>(s.tokens.completion.size());
    eos += s.eos ? 1.0 : 0.0;
    for (float a : s.advantages) {
      adv += a;
      adv_sq += static_cast<double>(a) * a;
      tokens += 1;
    }
    for (size_t t = 0; t < s.returns.size() && t < s.values.size(); ++t) {
      returns.push_back(s.returns[t]);
      errors.push_back(s.returns[t] - s.values[t]);
    }
  }
  const double adv_mean = tokens > 0 ? adv / tokens : 0.0;
  std::vector<std::pair<std::string, double>> out = {
      {"score", score / n},
      {"kl", kl / n},
      {"entropy", length > 0 ? entropy / length : 0.0},
      {"response_length", length / n},
      {"eos_fraction", eos / n},
      {"advantage_mean", adv_mean},
      {"advantage_std",
       tokens > 0 ? std::sqrt(std::max(0.0, adv_sq / tokens - adv_mean * adv_mean)) : 0.0},
  };
  if (options.advantage != AdvantageKind::grpo) out.emplace_back("non_score_reward", penalty / n);
  if (options.advantage != AdvantageKind::gae) {
    // Groups whose K samples scored alike: zero advantages, nothing learnt from them.
    std::vector<double> scores;
    for (const Sample& s : rollout.samples) scores.push_back(s.score);
    out.emplace_back("frac_reward_zero_std",
                     zero_std_group_fraction(scores, options.samples_per_prompt));
  }
  if (options.advantage == AdvantageKind::gae && !returns.empty()) {
    // 1 − Var(R − V) / Var(R): how much of the returns' spread the values explain.
    auto variance = [](const std::vector<double>& x) {
      double m = 0, v = 0;
      for (double e : x) m += e;
      m /= static_cast<double>(x.size());
      for (double e : x) v += (e - m) * (e - m);
      return v / static_cast<double>(x.size());
    };
    const double var_r = variance(returns);
    out.emplace_back("explained_variance", var_r > 0 ? 1.0 - variance(errors) / var_r : 0.0);
  }
  return out;
}

}  // namespace rlaif
