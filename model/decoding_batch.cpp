#include "model/decoding_batch.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "kernels/backend.h"

namespace rlaif {
namespace {

// Logits [B, V] of the last position of every row of hidden [B, T, D], on the model's device
// (sampled there: only the B chosen ids come back to the host). The rows are picked with an
// embedding lookup (a row gather) so the vocabulary projection runs on B rows only.
Tensor last_position_logits(const Transformer& model, const Variable& hidden) {
  const int64_t B = hidden.size(0), T = hidden.size(1), D = hidden.size(2);
  std::vector<int32_t> rows(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b)
    rows[static_cast<size_t>(b)] = static_cast<int32_t>(b * T + T - 1);
  Tensor ids = Tensor::from_vector(rows, {B}).to(model.device());
  Variable last = embedding(reshape(hidden, {B * T, D}), ids);
  Tensor logits = model.logits(last).data();
  if (logits.device().is_cpu() && logits.dtype() != DType::f32) {  // the CPU samples f32 only
    Tensor wide = Tensor::empty(logits.shape(), DType::f32, logits.device());
    backend_for(logits.device()).cast(logits, wide);
    logits = wide;
  }
  return logits;
}

// Runs `prompts` (non-empty) through the model into `cache`, left-padded to the longest; the
// padding is its own segment and real tokens' positions start at 0. Returns the last logits.
Tensor prefill_left_padded(const Transformer& model,
                           const std::vector<std::vector<int32_t>>& prompts, KVCache& cache) {
  const auto B = static_cast<int64_t>(prompts.size());
  int64_t longest = 0;
  for (const auto& p : prompts)
    longest = std::max<int64_t>(longest, static_cast<int64_t>(p.size()));
  std::vector<int32_t> ids(static_cast<size_t>(B * longest), 0), pos(ids.size(), 0),
      seg(ids.size(), kPaddingSegment);
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[static_cast<size_t>(b)];
    const int64_t pad = longest - static_cast<int64_t>(p.size());
    for (size_t i = 0; i < p.size(); ++i) {
      const size_t at = static_cast<size_t>(b * longest + pad) + i;
      ids[at] = p[i];
      pos[at] = static_cast<int32_t>(i);
      seg[at] = 0;
    }
  }
  const Device device = model.device();
  TransformerInput input{Tensor::from_vector(ids, {B, longest}).to(device),
                         Tensor::from_vector(pos, {B, longest}).to(device),
                         Tensor::from_vector(seg, {B, longest}).to(device)};
  return last_position_logits(model, model.hidden_states(input, &cache));
}

}  // namespace

DecodingBatch::DecodingBatch(const Transformer& model, SamplingOptions sampling,
                             std::vector<int32_t> eos_ids, int64_t capacity)
    : model_(model), sampling_(sampling), eos_ids_(std::move(eos_ids)), capacity_(capacity) {
  RLAIF_CHECK(capacity > 1 && capacity <= model.config().max_position_embeddings,
              "DecodingBatch: a capacity of ", capacity, " positions is not in [2, ",
              model.config().max_position_embeddings, "] (the model's context)");
}

void DecodingBatch::start(const std::vector<std::vector<int32_t>>& prompts,
                          std::vector<uint64_t> stream_ids, const std::vector<uint64_t>& seeds) {
  NoGradGuard no_grad;
  RLAIF_CHECK(!cache_, "DecodingBatch::start: already started");
  const int64_t B = static_cast<int64_t>(prompts.size());
  RLAIF_CHECK(B > 0, "DecodingBatch::start: no prompts");
  RLAIF_CHECK(stream_ids.empty() || stream_ids.size() == prompts.size(),
              "DecodingBatch: ", stream_ids.size(), " stream ids for ", prompts.size(), " prompts");
  RLAIF_CHECK(seeds.empty() || seeds.size() == prompts.size(), "DecodingBatch: ", seeds.size(),
              " seeds for ", prompts.size(), " prompts");
  int64_t longest = 0;
  for (size_t b = 0; b < prompts.size(); ++b) {
    RLAIF_CHECK(!prompts[b].empty(), "generate: prompt ", b, " is empty (start it with BOS)");
    longest = std::max<int64_t>(longest, static_cast<int64_t>(prompts[b].size()));
  }
  RLAIF_CHECK(longest < capacity_, "generate: a prompt of ", longest,
              " tokens leaves no room in a cache of ", capacity_,
              " positions (the model's context ", model_.config().max_position_embeddings, ")");

  rows_.assign(prompts.size(), Row{});
  for (size_t b = 0; b < prompts.size(); ++b) {
    Row& row = rows_[b];
    row.live = true;
    row.seed = seeds.empty() ? sampling_.seed : seeds[b];
    row.stream = stream_ids.empty() ? static_cast<uint64_t>(b) : stream_ids[b];
    row.next_position = static_cast<int32_t>(prompts[b].size());
  }
  cache_ =
      std::make_unique<KVCache>(model_.config(), B, capacity_, model_.device(), model_.dtype());
  logits_ = prefill_left_padded(model_, prompts, *cache_);
  const Device device = model_.device();
  uniforms_host_ = Tensor::empty({B}, DType::f32);
  tokens_ = Tensor::empty({B}, DType::i32, device);
}

bool DecodingBatch::any_live() const {
  return std::any_of(rows_.begin(), rows_.end(), [](const Row& r) { return r.live; });
}

std::vector<int64_t> DecodingBatch::sample() {
  RLAIF_CHECK(cache_, "DecodingBatch::sample: not started");
  RLAIF_CHECK(room() > 0, "DecodingBatch::sample: no room left in the cache of ", capacity_,
              " positions");
  // One draw per row from its own stream at its own token count, made on the host (as the CPU
  // would), then every row sampled on the device; ended rows too (their tokens are ignored),
  // which keeps the call one rectangular batch.
  float* u = uniforms_host_.data<float>();
  for (size_t b = 0; b < rows_.size(); ++b) {
    u[b] = sampling_uniform(rows_[b].seed, rows_[b].stream,
                            static_cast<uint64_t>(rows_[b].out.tokens.size()));
  }
  backend_for(model_.device())
      .sample_tokens(logits_, uniforms_host_.to(model_.device()), sampling_.temperature,
                     sampling_.top_k, sampling_.top_p, tokens_);
  const std::vector<int32_t> picked = tokens_.to(Device::cpu()).to_vector<int32_t>();
  std::vector<int64_t> received;
  for (size_t b = 0; b < rows_.size(); ++b) {
    Row& row = rows_[b];
    if (!row.live) continue;
    row.out.tokens.push_back(picked[b]);
    received.push_back(static_cast<int64_t>(b));
    if (std::find(eos_ids_.begin(), eos_ids_.end(), picked[b]) != eos_ids_.end()) {
      row.out.stopped_at_eos = true;
      row.live = false;
    }
  }
  return received;
}

void DecodingBatch::end_row(int64_t row) {
  rows_.at(static_cast<size_t>(row)).live = false;
}

void DecodingBatch::decode() {
  NoGradGuard no_grad;
  RLAIF_CHECK(cache_ && length() < capacity_, "DecodingBatch::decode: no room left in the cache");
  const int64_t B = rows();
  std::vector<int32_t> next(rows_.size()), positions(rows_.size());
  for (size_t b = 0; b < rows_.size(); ++b) {
    Row& row = rows_[b];
    RLAIF_CHECK(!row.live || !row.out.tokens.empty(), "DecodingBatch::decode: row ", b,
                " has no token yet (sample() first)");
    next[b] = row.out.tokens.empty() ? 0 : row.out.tokens.back();
    positions[b] = row.next_position++;
  }
  const Device device = model_.device();
  TransformerInput input{Tensor::from_vector(next, {B, 1}).to(device),
                         Tensor::from_vector(positions, {B, 1}).to(device), Tensor()};
  logits_ = last_position_logits(model_, model_.hidden_states(input, cache_.get()));
}

void DecodingBatch::add_rows(int64_t n) {
  RLAIF_CHECK(cache_, "DecodingBatch::add_rows: not started");
  RLAIF_CHECK(n >= 0, "DecodingBatch::add_rows: ", n, " rows");
  if (n == 0) return;
  const int64_t B = rows() + n;
  cache_->grow(B);
  Tensor logits = Tensor::empty({B, logits_.size(1)}, logits_.dtype(), logits_.device());
  Backend& backend = backend_for(logits_.device());
  backend.copy(logits_, logits.slice(0, rows()));
  backend.fill(logits.slice(rows(), B), 0.0);
  logits_ = logits;
  rows_.resize(static_cast<size_t>(B));  // ended rows; positions restart at their join
  uniforms_host_ = Tensor::empty({B}, DType::f32);
  tokens_ = Tensor::empty({B}, DType::i32, model_.device());
}

void DecodingBatch::keep_rows(const std::vector<int64_t>& rows) {
  RLAIF_CHECK(cache_, "DecodingBatch::keep_rows: not started");
  cache_->keep_rows(rows);  // checks the row numbers
  const auto B = static_cast<int64_t>(rows.size());
  Tensor logits = Tensor::empty({B, logits_.size(1)}, logits_.dtype(), logits_.device());
  Backend& backend = backend_for(logits_.device());
  std::vector<Row> kept;
  for (int64_t i = 0; i < B; ++i) {
    const int64_t r = rows[static_cast<size_t>(i)];
    backend.copy(logits_.select(r), logits.select(i));
    kept.push_back(std::move(rows_[static_cast<size_t>(r)]));
  }
  logits_ = logits;
  rows_ = std::move(kept);
  uniforms_host_ = Tensor::empty({B}, DType::f32);
  tokens_ = Tensor::empty({B}, DType::i32, model_.device());
}

std::vector<int64_t> DecodingBatch::drop_ended_rows() {
  const int64_t live = live_rows();
  if (live == 0 || 2 * live > rows()) return {};
  std::vector<int64_t> keep;
  for (int64_t r = 0; r < rows(); ++r) {
    if (this->live(r)) keep.push_back(r);
  }
  keep_rows(keep);
  return keep;
}

int64_t DecodingBatch::live_rows() const {
  return std::count_if(rows_.begin(), rows_.end(), [](const Row& r) { return r.live; });
}

void DecodingBatch::join(const std::vector<int64_t>& rows,
                         const std::vector<std::vector<int32_t>>& prompts,
                         const std::vector<uint64_t>& stream_ids,
                         const std::vector<uint64_t>& seeds) {
  NoGradGuard no_grad;
  RLAIF_CHECK(rows.size() == prompts.size() && stream_ids.size() == prompts.size() &&
                  (seeds.empty() || seeds.size() == prompts.size()),
              "DecodingBatch::join: ", rows.size(), " rows, ", prompts.size(), " prompts, ",
              stream_ids.size(), " stream ids and ", seeds.size(), " seeds");
  if (rows.empty()) return;
  int64_t longest = 0;
  for (size_t k = 0; k < rows.size(); ++k) {
    const int64_t row = rows[k], P = static_cast<int64_t>(prompts[k].size());
    RLAIF_CHECK(row >= 0 && row < this->rows() && !live(row) &&
                    std::count(rows.begin(), rows.end(), row) == 1,
                "DecodingBatch::join: row ", row, " is not an ended row of the ", this->rows(),
                "-row batch (or is given twice)");
    RLAIF_CHECK(can_join(P), "DecodingBatch::join: a prompt of ", P, " tokens cannot join ",
                length(), " cached positions (room for ", room(), " more tokens)");
    longest = std::max(longest, P);
  }
  // The prompts' prefill, together and apart from the batch: what generating them alone computes.
  const auto K = static_cast<int64_t>(prompts.size());
  KVCache joining(model_.config(), K, longest, model_.device(), model_.dtype());
  const Tensor logits = prefill_left_padded(model_, prompts, joining);
  Backend& backend = backend_for(model_.device());
  for (int64_t k = 0; k < K; ++k) {
    const int64_t row = rows[static_cast<size_t>(k)];
    cache_->place_row(row, joining, k);
    backend.copy(logits.select(k), logits_.select(row));
    Row& r = rows_[static_cast<size_t>(row)];
    r = Row{};
    r.live = true;
    r.seed = seeds.empty() ? sampling_.seed : seeds[static_cast<size_t>(k)];
    r.stream = stream_ids[static_cast<size_t>(k)];
    r.next_position = static_cast<int32_t>(prompts[static_cast<size_t>(k)].size());
  }
}

}  // namespace rlaif
