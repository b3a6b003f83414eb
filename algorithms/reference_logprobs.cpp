#include "algorithms/reference_logprobs.h"

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
#include "runtime/fnv1a.h"

namespace rlaif {
namespace {

// Feeds `n` bytes to `h` as 64-bit words (the tail byte by byte), then the length: weights are
// large, and a word per step takes 8x fewer multiplies than a byte per step.
void add_block(Fnv1a64& h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h.add_word(w);
  }
  for (; i < n; ++i) h.add_word(p[i]);
  h.add_word(n);
}

void add_ids(Fnv1a64& h, const std::vector<int32_t>& ids) {
  add_block(h, ids.data(), ids.size() * sizeof(int32_t));
}

std::string hex(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::vector<float> host(const Variable& v) {
  return v.data().to(Device::cpu()).to_vector<float>();
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

// The cache file's format, part of its key: "-2" keys by standard FNV-1a 64 hashes (offset basis
// 14695981039346656037). A file of any other format is recomputed.
constexpr const char* kCacheFormat = "rlaif-ref-logprobs-2";

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
  Fnv1a64 f;
  const std::string config = model.config().to_json();
  add_block(f, config.data(), config.size());
  for (const auto& [name, v] : model.parameters()) {
    add_block(f, name.data(), name.size());
    // The stored bytes, whatever the dtype (a GPU reference may hold bf16 weights).
    Tensor t = v.data().to(Device::cpu());
    add_block(f, t.raw_data(), t.nbytes());
  }
  // Adapters change the model only where they are applied: a handle with them off hashes as its
  // base (and computes the base's log-probs).
  if (model.has_adapters() && model.adapters_enabled()) {
    for (const auto& [name, v] : model.adapter_parameters()) {
      add_block(f, name.data(), name.size());
      Tensor t = v.data().to(Device::cpu());
      add_block(f, t.raw_data(), t.nbytes());
    }
  }
  return f.value();
}

uint64_t pairs_hash(const std::vector<TokenizedPair>& pairs) {
  Fnv1a64 f;
  for (const TokenizedPair& p : pairs) {
    add_ids(f, p.chosen.prompt);
    add_ids(f, p.chosen.completion);
    add_ids(f, p.rejected.prompt);
    add_ids(f, p.rejected.completion);
  }
  f.add_word(pairs.size());
  return f.value();
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
    key = {{"format", kCacheFormat},
           {"reference", hex(model_hash(reference))},
           {"train_pairs", hex(pairs_hash(train))},
           {"val_pairs", hex(pairs_hash(val))}};
  }
  if (lead && std::filesystem::exists(cache_path)) {
    try {
      SafetensorsFile file = SafetensorsFile::open(cache_path);
      auto format = file.metadata().find("format");
      if (format != file.metadata().end() && format->second != kCacheFormat) {
        std::fprintf(stderr,
                     "reference log-probs: %s holds format %s, keyed by other hashes than "
                     "this build's %s: recomputing them\n",
                     cache_path.c_str(), format->second.c_str(), kCacheFormat);
      }
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
      std::fprintf(stderr, "reference log-probs: recomputing them: %s\n", e.what());
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

void check_reference(const DpoReference& reference, const Transformer& policy, size_t train,
                     size_t val, const char* what, const char* items) {
  if (reference.model != nullptr) {
    RLAIF_CHECK(reference.model->config().vocab_size == policy.config().vocab_size, what,
                ": the reference's vocabulary (", reference.model->config().vocab_size,
                ") differs from the policy's (", policy.config().vocab_size, ")");
    RLAIF_CHECK(reference.model->config().max_position_embeddings >=
                    policy.config().max_position_embeddings,
                what, ": the reference's context is shorter than the policy's");
  } else {
    RLAIF_CHECK(reference.train.size() == train && reference.val.size() == val, what,
                ": precomputed reference log-probs cover ", reference.train.size(), "+",
                reference.val.size(), " ", items, ", the data ", train, "+", val);
  }
}

}  // namespace rlaif
