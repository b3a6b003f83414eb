#include "algorithms/online_dpo.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "algorithms/ppo_rollout.h"
#include "autograd/grad_mode.h"
#include "io/atomic_file.h"
#include "io/jsonl.h"
#include "io/model_dir.h"
#include "model/continuous_generation.h"
#include "model/generate.h"

namespace rlaif {
namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void append_ids(std::string& out, const std::vector<int32_t>& ids) {
  out += '[';
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  out += ']';
}

std::vector<int32_t> read_ids(const rapidjson::Value& record, const char* key,
                              const std::string& path, int64_t line) {
  RLAIF_CHECK(record.HasMember(key) && record[key].IsArray(), path, ":", line,
              ": missing token list \"", key, "\"");
  std::vector<int32_t> ids;
  for (const auto& v : record[key].GetArray()) {
    RLAIF_CHECK(v.IsInt(), path, ":", line, ": \"", key, "\" holds a non-integer");
    ids.push_back(v.GetInt());
  }
  return ids;
}

double mean(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

void add_metric(std::vector<std::pair<std::string, double>>& metrics, const std::string& name,
                double value) {
  metrics.emplace_back(name, value);
}

}  // namespace

OnlineDpoTask::OnlineDpoTask(const Transformer& policy, const Transformer& reference,
                             const Tokenizer& tokenizer, std::vector<std::string> prompts,
                             PairJudge& judge, OnlineDpoOptions options)
    : policy_(policy),
      reference_(reference),
      tokenizer_(tokenizer),
      prompts_(std::move(prompts)),
      judge_(judge),
      options_(std::move(options)) {
  RLAIF_CHECK(!prompts_.empty(), "online dpo: no prompts");
  RLAIF_CHECK(options_.batch_prompts > 0, "--batch (prompts per micro-batch) must be positive");
  RLAIF_CHECK(options_.grad_accum > 0, "--grad-accum must be positive");
  RLAIF_CHECK(options_.max_new_tokens > 0, "--max-new-tokens must be positive");
  RLAIF_CHECK(options_.temperature > 0, "--temperature must be positive");
  RLAIF_CHECK(options_.max_prompt_length > 0, "--max-prompt-length must be positive");
  RLAIF_CHECK(options_.forward_batch > 0, "the generation batch must be positive");
  RLAIF_CHECK(options_.rounds >= 0, "--rounds must be ≥ 0 (0: online)");
  if (options_.rounds > 0) {
    RLAIF_CHECK(options_.steps >= options_.rounds, "--rounds ", options_.rounds,
                " needs at least as many --steps (", options_.steps, ")");
    RLAIF_CHECK(!options_.rounds_dir.empty(),
                "online dpo: rounds need a directory for their pairs");
  }
  RLAIF_CHECK(reference_.config().vocab_size == policy_.config().vocab_size,
              "online dpo: the reference's vocabulary differs from the policy's");
}

OnlineDpoTask::~OnlineDpoTask() = default;

int64_t OnlineDpoTask::steps_per_round() const {
  return (options_.steps + options_.rounds - 1) / options_.rounds;
}

OnlineDpoTask::JudgedPairs OnlineDpoTask::sample_and_judge(
    const std::vector<int64_t>& prompt_indices, uint64_t stream_base) {
  const size_t n = prompt_indices.size();
  std::vector<std::vector<int32_t>> prompt_ids;
  std::vector<std::string> prompt_texts;
  for (int64_t i : prompt_indices) {
    prompt_texts.push_back(prompts_.at(static_cast<size_t>(i)));
    prompt_ids.push_back(tokenize_prompt(tokenizer_, options_.chat, prompt_texts.back(),
                                         options_.max_prompt_length));
  }
  GenerationOptions gen;
  gen.max_new_tokens = options_.max_new_tokens;
  gen.sampling.temperature = static_cast<float>(options_.temperature);
  gen.sampling.seed = options_.seed;
  gen.eos_ids = generation_stop_ids(policy_.config(), tokenizer_);
  // Sequence 2p + k is sample k of prompt p, drawn from stream stream_base + 2p + k, decoded
  // `forward_batch` at a time with continuous batching (model/continuous_generation.h).
  const size_t total = 2 * n;
  const int64_t context = policy_.config().max_position_embeddings;
  std::vector<std::vector<int32_t>> sequences;
  std::vector<uint64_t> streams;
  for (size_t s = 0; s < total; ++s) {
    RLAIF_CHECK(static_cast<int64_t>(prompt_ids[s / 2].size()) < context, "online dpo: prompt ",
                prompt_indices[s / 2],
                " leaves no room to generate in the model's context: lower --max-prompt-length");
    sequences.push_back(prompt_ids[s / 2]);
    streams.push_back(stream_base + s);
  }
  std::vector<Generation> samples(total);
  generate_continuously(policy_, sequences, gen, streams, options_.forward_batch,
                        [&](size_t s, Generation g) { samples[s] = std::move(g); });
  std::vector<std::string> first, second;
  double eos = 0.0;
  for (size_t p = 0; p < n; ++p) {
    first.push_back(tokenizer_.decode(samples[2 * p].tokens));
    second.push_back(tokenizer_.decode(samples[2 * p + 1].tokens));
    eos += (samples[2 * p].stopped_at_eos ? 1.0 : 0.0) +
           (samples[2 * p + 1].stopped_at_eos ? 1.0 : 0.0);
  }
  const std::vector<PairOutcome> outcomes = judge_.judge(prompt_texts, first, second);
  RLAIF_CHECK(outcomes.size() == n, "online dpo: the judge gave ", outcomes.size(),
              " verdicts for ", n, " pairs");
  const std::vector<double>& s1 = judge_.last_first_scores();
  const std::vector<double>& s2 = judge_.last_second_scores();
  const bool scored = s1.size() == n && s2.size() == n;
  JudgedPairs out;
  std::vector<double> margins;
  for (size_t p = 0; p < n; ++p) {
    const PairOutcome o = outcomes[p];
    if (o != PairOutcome::first && o != PairOutcome::second) continue;
    const bool first_wins = o == PairOutcome::first;
    TokenizedPair pair;
    pair.chosen.prompt = prompt_ids[p];
    pair.rejected.prompt = prompt_ids[p];
    pair.chosen.completion = samples[2 * p + (first_wins ? 0 : 1)].tokens;
    pair.rejected.completion = samples[2 * p + (first_wins ? 1 : 0)].tokens;
    out.pairs.push_back(std::move(pair));
    if (scored) margins.push_back(first_wins ? s1[p] - s2[p] : s2[p] - s1[p]);
  }
  add_metric(out.metrics, "val/contain_eos_token", eos / static_cast<double>(total));
  add_metric(out.metrics, "judge/skipped_fraction",
             static_cast<double>(n - out.pairs.size()) / static_cast<double>(n));
  if (scored) {
    add_metric(out.metrics, "objective/scores", (mean(s1) + mean(s2)) / 2.0);
    add_metric(out.metrics, "objective/scores_margin", mean(margins));
  }
  return out;
}

const OnlineDpoTask::JudgedPairs& OnlineDpoTask::round_pairs(int64_t round) {
  if (loaded_round_ == round) return round_;
  char name[48];
  std::snprintf(name, sizeof name, "round_%04lld.jsonl", static_cast<long long>(round + 1));
  const std::string path = (std::filesystem::path(options_.rounds_dir) / name).string();
  const int64_t per_round = steps_per_round() * options_.grad_accum * options_.batch_prompts;
  round_ = JudgedPairs{};
  if (std::filesystem::exists(path)) {
    read_jsonl(path, [&](const rapidjson::Value& r, int64_t line) {
      if (line == 1) {
        RLAIF_CHECK(r.HasMember("seed") && r["seed"].IsUint64() &&
                        r["seed"].GetUint64() == options_.seed && r.HasMember("prompts") &&
                        r["prompts"].IsInt64() && r["prompts"].GetInt64() == per_round,
                    path,
                    ":1: these pairs were sampled with another --seed or round size; "
                    "move the file away to sample the round again");
        for (const auto& m : r["metrics"].GetObject())
          add_metric(round_.metrics, m.name.GetString(), m.value.GetDouble());
        return;
      }
      TokenizedPair pair;
      pair.chosen.prompt = read_ids(r, "prompt", path, line);
      pair.rejected.prompt = pair.chosen.prompt;
      pair.chosen.completion = read_ids(r, "chosen", path, line);
      pair.rejected.completion = read_ids(r, "rejected", path, line);
      round_.pairs.push_back(std::move(pair));
    });
  } else {
    round_ = sample_and_judge(
        rollout_prompt_indices(round, per_round, static_cast<int64_t>(prompts_.size()),
                               options_.seed),
        static_cast<uint64_t>(round * 2 * per_round));
    std::string text = "{\"round\":" + std::to_string(round + 1) +
                       ",\"seed\":" + std::to_string(options_.seed) +
                       ",\"prompts\":" + std::to_string(per_round) + ",\"metrics\":{";
    for (size_t i = 0; i < round_.metrics.size(); ++i) {
      if (i) text += ',';
      text += "\"" + round_.metrics[i].first + "\":" + number(round_.metrics[i].second);
    }
    text += "}}\n";
    for (const TokenizedPair& p : round_.pairs) {
      text += "{\"prompt\":";
      append_ids(text, p.chosen.prompt);
      text += ",\"chosen\":";
      append_ids(text, p.chosen.completion);
      text += ",\"rejected\":";
      append_ids(text, p.rejected.completion);
      text += "}\n";
    }
    std::filesystem::create_directories(options_.rounds_dir);
    write_file_atomically(path, text);
  }
  loaded_round_ = round;
  round_task_.reset();
  if (!round_.pairs.empty()) {
    DpoOptions d = options_.dpo;
    d.batch = std::min<int64_t>(options_.batch_prompts, static_cast<int64_t>(round_.pairs.size()));
    d.grad_accum = options_.grad_accum;
    d.seed = options_.seed + static_cast<uint64_t>(round);
    d.rank = 0;
    d.ranks = 1;
    DpoReference ref;
    ref.model = &reference_;
    round_task_ = std::make_unique<DpoTask>(policy_, std::move(ref), round_.pairs,
                                            std::vector<TokenizedPair>{}, d);
  }
  return round_;
}

MicroBatchResult OnlineDpoTask::micro_batch(int64_t step, int64_t micro, double scale) {
  MicroBatchResult r;
  std::vector<std::pair<std::string, double>> judging;
  if (options_.rounds > 0) {
    const int64_t round = step / steps_per_round();
    const JudgedPairs& pairs = round_pairs(round);
    judging = pairs.metrics;
    if (round_task_) r = round_task_->micro_batch(step - round * steps_per_round(), micro, scale);
    add_metric(judging, "judge/pairs", static_cast<double>(pairs.pairs.size()));
    add_metric(judging, "round", static_cast<double>(round + 1));
  } else {
    const int64_t rollout = step * options_.grad_accum + micro;
    JudgedPairs pairs = sample_and_judge(
        rollout_prompt_indices(rollout, options_.batch_prompts,
                               static_cast<int64_t>(prompts_.size()), options_.seed),
        static_cast<uint64_t>(rollout * 2 * options_.batch_prompts));
    judging = std::move(pairs.metrics);
    add_metric(judging, "judge/pairs", static_cast<double>(pairs.pairs.size()));
    if (!pairs.pairs.empty()) {
      DpoOptions d = options_.dpo;
      d.batch = static_cast<int64_t>(pairs.pairs.size());
      d.grad_accum = 1;
      d.rank = 0;
      d.ranks = 1;
      DpoReference ref;
      ref.model = &reference_;
      DpoTask task(policy_, std::move(ref), std::move(pairs.pairs), {}, d);
      r = task.micro_batch(0, 0, scale);
    }
  }
  // log π − log π_ref per sample, from the implicit rewards β·(log π − log π_ref).
  double chosen = 0.0, rejected = 0.0;
  bool have = false;
  for (const auto& [name, v] : r.metrics) {
    if (name == "rewards/chosen") chosen = v, have = true;
    if (name == "rewards/rejected") rejected = v;
  }
  if (have) add_metric(r.metrics, "objective/kl", (chosen + rejected) / (2.0 * options_.dpo.beta));
  for (auto& m : judging) r.metrics.push_back(std::move(m));
  return r;
}

}  // namespace rlaif
