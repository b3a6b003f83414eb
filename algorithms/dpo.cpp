#include "algorithms/dpo.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <tuple>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "io/safetensors.h"

namespace rlaif {
namespace {

// FNV-1a, fed 64-bit words where it can (weights are large; bytes would be 8x slower).
struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void word(uint64_t w) { h = (h ^ w) * 1099511628211ull; }
  void bytes(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      word(w);
    }
    for (; i < n; ++i) word(p[i]);
    word(n);
  }
  void ids(const std::vector<int32_t>& v) { bytes(v.data(), v.size() * sizeof(int32_t)); }
};

std::string hex(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

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

}  // namespace

RefLogprobs compute_ref_logprobs(const Transformer& model, const std::vector<TokenizedPair>& pairs,
                                 int64_t batch) {
  RLAIF_CHECK(batch > 0, "compute_ref_logprobs: batch must be positive");
  NoGradGuard no_grad;
  RefLogprobs out;
  const auto total = static_cast<int64_t>(pairs.size());
  for (int64_t begin = 0; begin < total; begin += batch) {
    const std::vector<int64_t> indices = index_range(begin, std::min(total, begin + batch));
    const auto n = static_cast<size_t>(indices.size());
    SequenceBatch b = make_pair_batch(pairs, indices, model.device());
    const std::vector<float> sum = host(completion_logprobs(model, b, /*average=*/false));
    // The averages from the same forward pass: sum / trained tokens (masked_mean's definition,
    // 0 for a row with none).
    const std::vector<float> mask = b.completion_mask.to(Device::cpu()).to_vector<float>();
    const auto width = static_cast<size_t>(b.width());
    std::vector<float> avg(sum.size(), 0.0f);
    for (size_t row = 0; row < sum.size(); ++row) {
      float count = 0.0f;
      for (size_t t = 0; t < width; ++t) count += mask[row * width + t];
      avg[row] = count > 0.0f ? sum[row] / count : 0.0f;
    }
    out.chosen_sum.insert(out.chosen_sum.end(), sum.begin(), sum.begin() + static_cast<long>(n));
    out.rejected_sum.insert(out.rejected_sum.end(), sum.begin() + static_cast<long>(n), sum.end());
    out.chosen_avg.insert(out.chosen_avg.end(), avg.begin(), avg.begin() + static_cast<long>(n));
    out.rejected_avg.insert(out.rejected_avg.end(), avg.begin() + static_cast<long>(n), avg.end());
  }
  return out;
}

uint64_t model_hash(const Transformer& model) {
  Fnv f;
  const std::string config = model.config().to_json();
  f.bytes(config.data(), config.size());
  for (const auto& [name, v] : model.parameters()) {
    f.bytes(name.data(), name.size());
    Tensor t = v.data().to(Device::cpu());
    f.bytes(t.data<float>(), static_cast<size_t>(t.numel()) * sizeof(float));
  }
  return f.h;
}

uint64_t pairs_hash(const std::vector<TokenizedPair>& pairs) {
  Fnv f;
  for (const TokenizedPair& p : pairs) {
    f.ids(p.chosen.prompt);
    f.ids(p.chosen.completion);
    f.ids(p.rejected.prompt);
    f.ids(p.rejected.completion);
  }
  f.word(pairs.size());
  return f.h;
}

std::pair<RefLogprobs, RefLogprobs> cached_ref_logprobs(const std::string& cache_path,
                                                        const Transformer& reference,
                                                        const std::vector<TokenizedPair>& train,
                                                        const std::vector<TokenizedPair>& val,
                                                        int64_t batch, bool* reused) {
  const std::map<std::string, std::string> key = {{"format", "rlaif-ref-logprobs-1"},
                                                  {"reference", hex(model_hash(reference))},
                                                  {"train_pairs", hex(pairs_hash(train))},
                                                  {"val_pairs", hex(pairs_hash(val))}};
  const char* fields[] = {"chosen_sum", "rejected_sum", "chosen_avg", "rejected_avg"};
  auto columns = [](RefLogprobs& r) {
    return std::vector<std::vector<float>*>{&r.chosen_sum, &r.rejected_sum, &r.chosen_avg,
                                            &r.rejected_avg};
  };
  std::pair<RefLogprobs, RefLogprobs> out;
  if (std::filesystem::exists(cache_path)) {
    try {
      SafetensorsFile file = SafetensorsFile::open(cache_path);
      bool match = true;
      for (const auto& [k, v] : key) {
        auto it = file.metadata().find(k);
        match = match && it != file.metadata().end() && it->second == v;
      }
      if (match) {
        for (auto [prefix, table, n] : {std::tuple{"train.", &out.first, train.size()},
                                        std::tuple{"val.", &out.second, val.size()}}) {
          if (n == 0) continue;  // empty tables are not stored
          auto cols = columns(*table);
          for (size_t c = 0; c < cols.size(); ++c) {
            *cols[c] = file.tensor(std::string(prefix) + fields[c]).to_vector<float>();
            RLAIF_CHECK(cols[c]->size() == n, cache_path, ": ", prefix, fields[c], " has ",
                        cols[c]->size(), " entries for ", n, " pairs");
          }
        }
        if (reused) *reused = true;
        return out;
      }
    } catch (const Error& e) {
      std::fprintf(stderr, "dpo: recomputing the reference log-probs: %s\n", e.what());
    }
  }
  out.first = compute_ref_logprobs(reference, train, batch);
  out.second = compute_ref_logprobs(reference, val, batch);
  NamedTensors tensors;
  for (auto [prefix, table] : {std::pair{"train.", &out.first}, std::pair{"val.", &out.second}}) {
    if (table->size() == 0) continue;
    auto cols = columns(*table);
    for (size_t c = 0; c < cols.size(); ++c) {
      tensors.emplace_back(std::string(prefix) + fields[c],
                           Tensor::from_vector(*cols[c], {static_cast<int64_t>(cols[c]->size())}));
    }
  }
  std::filesystem::path parent = std::filesystem::path(cache_path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  write_safetensors(cache_path, tensors, key);
  if (reused) *reused = false;
  return out;
}

struct DpoTask::Sums {
  double loss = 0, chosen = 0, rejected = 0, accuracies = 0, margins = 0, logps_chosen = 0,
         logps_rejected = 0;
  int64_t pairs = 0;

  std::vector<std::pair<std::string, double>> means(const std::string& prefix) const {
    const double n = pairs > 0 ? static_cast<double>(pairs) : 1.0;
    return {{prefix + "rewards/chosen", chosen / n},
            {prefix + "rewards/rejected", rejected / n},
            {prefix + "rewards/accuracies", accuracies / n},
            {prefix + "rewards/margins", margins / n},
            {prefix + "logps/chosen", logps_chosen / n},
            {prefix + "logps/rejected", logps_rejected / n}};
  }
};

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
  // Validates beta and label smoothing once, up front, rather than at the first step.
  Variable zero(Tensor::zeros({1}, DType::f32));
  dpo_loss(zero, zero, zero, zero, options_.beta, options_.loss, options_.label_smoothing);
  const int64_t context = policy_.config().max_position_embeddings;
  check_pairs_fit(train_, context, "dpo");
  check_pairs_fit(val_, context, "dpo (held-out pairs)");
  if (reference_.model != nullptr) {
    RLAIF_CHECK(reference_.model->config().vocab_size == policy_.config().vocab_size,
                "dpo: the reference's vocabulary (", reference_.model->config().vocab_size,
                ") differs from the policy's (", policy_.config().vocab_size, ")");
    RLAIF_CHECK(reference_.model->config().max_position_embeddings >= context,
                "dpo: the reference's context is shorter than the policy's");
  } else {
    RLAIF_CHECK(reference_.train.size() == train_.size() && reference_.val.size() == val_.size(),
                "dpo: precomputed reference log-probs cover ", reference_.train.size(), "+",
                reference_.val.size(), " pairs, the data ", train_.size(), "+", val_.size());
  }
}

double DpoTask::pair_loss(const std::vector<TokenizedPair>& pairs, const RefLogprobs& ref,
                          const std::vector<int64_t>& indices, double scale, bool backward,
                          Sums& sums, int64_t& tokens) const {
  const auto n = static_cast<int64_t>(indices.size());
  const bool average = dpo_uses_average_logprobs(options_.loss);
  SequenceBatch batch = make_pair_batch(pairs, indices, policy_.device());
  for (int64_t len : batch.lengths) tokens += len;
  Variable logp = completion_logprobs(policy_, batch, average);  // [2n]: chosen, then rejected
  Variable policy_c = slice(logp, 0, n), policy_r = slice(logp, n, 2 * n);
  Variable ref_c, ref_r;
  if (reference_.model != nullptr) {
    NoGradGuard no_grad;
    Variable r = completion_logprobs(*reference_.model, batch, average);
    ref_c = slice(r, 0, n);
    ref_r = slice(r, n, 2 * n);
  } else {
    ref_c = table_slice(average ? ref.chosen_avg : ref.chosen_sum, indices, policy_.device());
    ref_r = table_slice(average ? ref.rejected_avg : ref.rejected_sum, indices, policy_.device());
  }
  Variable losses = dpo_loss(policy_c, policy_r, ref_c, ref_r, options_.beta, options_.loss,
                             options_.label_smoothing);
  Variable loss = mean_all(losses);
  const double value = loss.data().to(Device::cpu()).item();
  if (backward) rlaif::scale(loss, static_cast<float>(scale)).backward();

  const std::vector<float> pc = host(policy_c), pr = host(policy_r), rc = host(ref_c),
                           rr = host(ref_r), l = host(losses);
  for (size_t i = 0; i < pc.size(); ++i) {
    // The implicit rewards β·log π/π_ref of each side.
    const double chosen = options_.beta * (static_cast<double>(pc[i]) - rc[i]);
    const double rejected = options_.beta * (static_cast<double>(pr[i]) - rr[i]);
    sums.loss += l[i];
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

MicroBatchResult DpoTask::micro_batch(int64_t step, int64_t micro, double scale) {
  const std::vector<int64_t> indices =
      order_.batch(step * options_.grad_accum + micro, options_.batch);
  Sums sums;
  MicroBatchResult r;
  r.loss = pair_loss(train_, reference_.train, indices, scale, /*backward=*/true, sums, r.tokens);
  r.metrics = sums.means("");
  return r;
}

std::vector<std::pair<std::string, double>> DpoTask::evaluate() {
  if (val_.empty()) return {};
  NoGradGuard no_grad;
  Sums sums;
  int64_t tokens = 0;
  const auto total = static_cast<int64_t>(val_.size());
  for (int64_t begin = 0; begin < total; begin += options_.batch) {
    pair_loss(val_, reference_.val, index_range(begin, std::min(total, begin + options_.batch)),
              1.0, /*backward=*/false, sums, tokens);
  }
  std::vector<std::pair<std::string, double>> out = {
      {"val_loss", sums.loss / static_cast<double>(sums.pairs)}};
  for (auto& m : sums.means("val_")) out.push_back(m);
  return out;
}

}  // namespace rlaif
