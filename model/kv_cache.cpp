#include "model/kv_cache.h"

#include <algorithm>

#include "kernels/backend.h"

namespace rlaif {

KVCache::KVCache(const ModelConfig& config, int64_t batch, int64_t capacity, Device device,
                 DType dtype)
    : batch_(batch), capacity_(capacity) {
  RLAIF_CHECK(batch > 0 && capacity > 0, "KVCache: batch (", batch, ") and capacity (", capacity,
              ") must be positive");
  Shape shape = {batch, capacity, config.num_kv_heads, config.head_dim};
  for (int64_t l = 0; l < config.num_layers; ++l) {
    keys_.push_back(Tensor::empty(shape, dtype, device));
    values_.push_back(Tensor::empty(shape, dtype, device));
  }
  segment_ids_ = Tensor::zeros({batch, capacity}, DType::i32, device);
}

void KVCache::write_rows(const Tensor& cache, const Tensor& rows) {
  int64_t tokens = rows.size(1);
  Backend& backend = backend_for(cache.device());
  // The cache is [B, capacity, ...]: each batch row's new tokens are one leading-dimension slice.
  for (int64_t b = 0; b < batch_; ++b) {
    backend.copy(rows.select(b), cache.select(b).slice(length_, length_ + tokens));
  }
}

void KVCache::write(int64_t layer, const Tensor& k, const Tensor& v) {
  RLAIF_CHECK(layer >= 0 && layer < static_cast<int64_t>(keys_.size()), "KVCache::write: layer ",
              layer, " out of range");
  const Tensor& keys = keys_[static_cast<size_t>(layer)];
  RLAIF_CHECK(k.dim() == 4 && k.size(0) == batch_ && k.size(2) == keys.size(2) &&
                  k.size(3) == keys.size(3) && v.shape() == k.shape(),
              "KVCache::write: keys ", k, " / values ", v, " do not fit the cache ", keys);
  RLAIF_CHECK(length_ + k.size(1) <= capacity_, "KVCache::write: ", length_, " cached + ",
              k.size(1), " new tokens exceed the capacity of ", capacity_);
  write_rows(keys, k);
  write_rows(values_[static_cast<size_t>(layer)], v);
}

void KVCache::write_segments(int64_t tokens, const Tensor& segment_ids) {
  RLAIF_CHECK(length_ + tokens <= capacity_, "KVCache::write_segments: ", length_, " cached + ",
              tokens, " new tokens exceed the capacity of ", capacity_);
  Backend& backend = backend_for(segment_ids_.device());
  if (segment_ids.defined()) {
    RLAIF_CHECK(segment_ids.shape() == (Shape{batch_, tokens}),
                "KVCache::write_segments: ", segment_ids, " must be [", batch_, ", ", tokens, "]");
    write_rows(segment_ids_, segment_ids);
  } else {
    for (int64_t b = 0; b < batch_; ++b) {
      backend.fill(segment_ids_.select(b).slice(length_, length_ + tokens), 0);
    }
  }
}

void KVCache::advance(int64_t tokens) {
  RLAIF_CHECK(length_ + tokens <= capacity_, "KVCache::advance: past the capacity");
  length_ += tokens;
}

void KVCache::truncate(int64_t length) {
  RLAIF_CHECK(length >= 0 && length <= length_, "KVCache::truncate: ", length, " not in [0, ",
              length_, "]");
  length_ = length;
}

void KVCache::grow(int64_t batch) {
  RLAIF_CHECK(batch >= batch_, "KVCache::grow: ", batch, " rows is fewer than the ", batch_,
              " there are");
  if (batch == batch_) return;
  Backend& backend = backend_for(segment_ids_.device());
  auto grown = [&](const Tensor& old, double fill) {
    Shape shape = old.shape();
    shape[0] = batch;
    Tensor t = Tensor::empty(shape, old.dtype(), old.device());
    backend.copy(old, t.slice(0, batch_));
    backend.fill(t.slice(batch_, batch), fill);
    return t;
  };
  for (size_t l = 0; l < keys_.size(); ++l) {
    keys_[l] = grown(keys_[l], 0.0);
    values_[l] = grown(values_[l], 0.0);
  }
  segment_ids_ = grown(segment_ids_, static_cast<double>(kPaddingSegment));
  batch_ = batch;
}

void KVCache::keep_rows(const std::vector<int64_t>& rows) {
  const auto B = static_cast<int64_t>(rows.size());
  RLAIF_CHECK(B > 0, "KVCache::keep_rows: no rows to keep");
  for (int64_t r : rows) {
    RLAIF_CHECK(r >= 0 && r < batch_ && std::count(rows.begin(), rows.end(), r) == 1,
                "KVCache::keep_rows: row ", r, " is not a row of the ", batch_,
                "-row cache (or is given twice)");
  }
  Backend& backend = backend_for(segment_ids_.device());
  auto kept = [&](const Tensor& old) {
    Shape shape = old.shape();
    shape[0] = B;
    Tensor t = Tensor::empty(shape, old.dtype(), old.device());
    for (int64_t i = 0; i < B; ++i) {
      const int64_t r = rows[static_cast<size_t>(i)];
      backend.copy(old.select(r).slice(0, length_), t.select(i).slice(0, length_));
    }
    return t;
  };
  for (size_t l = 0; l < keys_.size(); ++l) {
    keys_[l] = kept(keys_[l]);
    values_[l] = kept(values_[l]);
  }
  segment_ids_ = kept(segment_ids_);
  batch_ = B;
}

void KVCache::place_row(int64_t row, const KVCache& source, int64_t from) {
  const int64_t n = source.length();
  RLAIF_CHECK(row >= 0 && row < batch_, "KVCache::place_row: row ", row, " of a ", batch_,
              "-row cache");
  RLAIF_CHECK(
      from >= 0 && from < source.batch() && n <= length_ && source.keys_.size() == keys_.size(),
      "KVCache::place_row: row ", from, " of a cache of ", source.batch(), " rows and ", n,
      " positions does not fit row ", row, " of ", length_, " cached positions");
  Backend& backend = backend_for(segment_ids_.device());
  const int64_t at = length_ - n;
  for (size_t l = 0; l < keys_.size(); ++l) {
    backend.copy(source.keys_[l].select(from).slice(0, n), keys_[l].select(row).slice(at, length_));
    backend.copy(source.values_[l].select(from).slice(0, n),
                 values_[l].select(row).slice(at, length_));
  }
  const Tensor segments = segment_ids_.select(row);
  if (at > 0) backend.fill(segments.slice(0, at), static_cast<double>(kPaddingSegment));
  backend.copy(source.segment_ids_.select(from).slice(0, n), segments.slice(at, length_));
}

}  // namespace rlaif
