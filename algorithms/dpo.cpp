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
#include "runtime/communicator.h"

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
  return compute_ref_logprobs(model, pairs, 0, static_cast<int64_t>(pairs.size()), batch);
}

RefLogprobs compute_ref_logprobs(const Transformer& model, const std::vector<TokenizedPair>& pairs,
                                 int64_t begin, int64_t end, int64_t batch) {
  RLAIF_CHECK(batch > 0, "compute_ref_logprobs: batch must be positive");
  RLAIF_CHECK(0 <= begin && begin <= end && end <= static_cast<int64_t>(pairs.size()),
              "compute_ref_logprobs: pairs [", begin, ", ", end, ") of ", pairs.size());
  NoGradGuard no_grad;
  RefLogprobs out;
  for (; begin < end; begin += batch) {
    const std::vector<int64_t> indices = index_range(begin, std::min(end, begin + batch));
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

namespace {

std::vector<std::vector<float>*> columns(RefLogprobs& r) {
  return {&r.chosen_sum, &r.rejected_sum, &r.chosen_avg, &r.rejected_avg};
}

// compute_ref_logprobs over every pair, split over the ranks of `comm`: rank r computes the r-th
// of R slices of whole `batch`-pair chunks (the forward passes a single rank would make, so the
// values are that rank's), then the slices are gathered, in order, on every rank.
RefLogprobs compute_ref_logprobs_sliced(const Transformer& model,
                                        const std::vector<TokenizedPair>& pairs, int64_t batch,
                                        Communicator& comm) {
  const auto n = static_cast<int64_t>(pairs.size());
  if (n == 0 || comm.size() == 1) return compute_ref_logprobs(model, pairs, batch);
  const int64_t ranks = comm.size();
  const int64_t chunks = (n + batch - 1) / batch;
  const int64_t slice = (chunks + ranks - 1) / ranks * batch;  // pairs per rank (the last: fewer)
  auto bounds = [&](int64_t r) {
    return std::pair{std::min(n, r * slice), std::min(n, (r + 1) * slice)};
  };
  const auto [begin, end] = bounds(comm.rank());
  RefLogprobs mine = compute_ref_logprobs(model, pairs, begin, end, batch);
  // Four columns of `slice` entries each (zero-padded), per rank.
  std::vector<float> packed(static_cast<size_t>(4 * slice), 0.0f);
  auto cols = columns(mine);
  for (size_t c = 0; c < cols.size(); ++c) {
    std::copy(cols[c]->begin(), cols[c]->end(), packed.begin() + static_cast<long>(c) * slice);
  }
  Tensor all = Tensor::zeros({ranks * 4 * slice}, DType::f32);
  comm.all_gather(Tensor::from_vector(packed, {4 * slice}), all);
  const std::vector<float> gathered = all.to_vector<float>();
  RefLogprobs out;
  auto out_cols = columns(out);
  for (int64_t r = 0; r < ranks; ++r) {
    const auto [b, e] = bounds(r);
    for (size_t c = 0; c < out_cols.size(); ++c) {
      const auto at =
          gathered.begin() + static_cast<long>((r * 4 + static_cast<int64_t>(c)) * slice);
      out_cols[c]->insert(out_cols[c]->end(), at, at + (e - b));
    }
  }
  return out;
}

// Every rank's `tables` become rank 0's; each table's size is known everywhere (its pair count).
void broadcast_tables(Communicator& comm,
                      std::initializer_list<std::pair<RefLogprobs*, size_t>> tables) {
  std::vector<float> packed;
  for (auto [table, n] : tables) {
    for (std::vector<float>* col : columns(*table)) {
      col->resize(n);
      packed.insert(packed.end(), col->begin(), col->end());
    }
  }
  if (packed.empty()) return;
  Tensor t = Tensor::from_vector(packed, {static_cast<int64_t>(packed.size())});
  comm.broadcast(t, 0);
  packed = t.to_vector<float>();
  size_t at = 0;
  for (auto [table, n] : tables) {
    for (std::vector<float>* col : columns(*table)) {
      std::copy(packed.begin() + static_cast<long>(at), packed.begin() + static_cast<long>(at + n),
                col->begin());
      at += n;
    }
  }
}

}  // namespace

uint64_t model_hash(const Transformer& model) {
  Fnv f;
  const std::string config = model.config().to_json();
  f.bytes(config.data(), config.size());
  for (const auto& [name, v] : model.parameters()) {
    f.bytes(name.data(), name.size());
    // The stored bytes, whatever the dtype (a GPU reference may hold bf16 weights).
    Tensor t = v.data().to(Device::cpu());
    f.bytes(t.raw_data(), t.nbytes());
  }
  // Adapters change the model only where they are applied: a handle with them off hashes as its
  // base (and computes the base's log-probs).
  if (model.has_adapters() && model.adapters_enabled()) {
    for (const auto& [name, v] : model.adapter_parameters()) {
      f.bytes(name.data(), name.size());
      Tensor t = v.data().to(Device::cpu());
      f.bytes(t.raw_data(), t.nbytes());
    }
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
                                                        int64_t batch, bool* reused,
                                                        Communicator* comm) {
  SingleProcessCommunicator alone;
  Communicator& ranks = comm != nullptr ? *comm : alone;
  const bool lead = ranks.rank() == 0;  // the rank that reads and writes the cache file
  const char* fields[] = {"chosen_sum", "rejected_sum", "chosen_avg", "rejected_avg"};
  std::map<std::string, std::string> key;
  std::pair<RefLogprobs, RefLogprobs> out;
  int32_t found = 0;
  if (lead) {
    key = {{"format", "rlaif-ref-logprobs-1"},
           {"reference", hex(model_hash(reference))},
           {"train_pairs", hex(pairs_hash(train))},
           {"val_pairs", hex(pairs_hash(val))}};
  }
  if (lead && std::filesystem::exists(cache_path)) {
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
        found = 1;
      }
    } catch (const Error& e) {
      out = {};
      std::fprintf(stderr, "dpo: recomputing the reference log-probs: %s\n", e.what());
    }
  }
  if (ranks.size() > 1) {  // rank 0 tells the others what it found, and sends it
    Tensor flag = Tensor::from_vector(std::vector<int32_t>{found}, {1});
    ranks.broadcast(flag, 0);
    found = flag.to_vector<int32_t>()[0];
    if (found) broadcast_tables(ranks, {{&out.first, train.size()}, {&out.second, val.size()}});
  }
  if (reused) *reused = found != 0;
  if (found) return out;

  out.first = compute_ref_logprobs_sliced(reference, train, batch, ranks);
  out.second = compute_ref_logprobs_sliced(reference, val, batch, ranks);
  if (!lead) return out;
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
  return out;
}

struct DpoTask::Sums {
  double loss = 0, chosen = 0, rejected = 0, accuracies = 0, margins = 0, logps_chosen = 0,
         logps_rejected = 0, nll = 0;
  int64_t pairs = 0;
  bool has_nll = false;

  std::vector<std::pair<std::string, double>> means(const std::string& prefix) const {
    const double n = pairs > 0 ? static_cast<double>(pairs) : 1.0;
    std::vector<std::pair<std::string, double>> out = {
        {prefix + "rewards/chosen", chosen / n},
        {prefix + "rewards/rejected", rejected / n},
        {prefix + "rewards/accuracies", accuracies / n},
        {prefix + "rewards/margins", margins / n},
        {prefix + "logps/chosen", logps_chosen / n},
        {prefix + "logps/rejected", logps_rejected / n}};
    if (has_nll) out.emplace_back(prefix + "nll_loss", nll / n);
    return out;
  }
};

namespace {

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

std::vector<std::pair<DpoLoss, double>> DpoTask::loss_terms() const {
  std::vector<std::pair<DpoLoss, double>> terms = {{options_.loss, options_.loss_weight}};
  terms.insert(terms.end(), options_.more_losses.begin(), options_.more_losses.end());
  return terms;
}

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
  // the sums times 1/tokens (one forward pass); alone, each is computed as before.
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
    sums.loss += l[i] + sft_share;
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
      rank_shard(order_.batch(step * options_.grad_accum + micro, options_.batch), options_.rank,
                 options_.ranks);
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
