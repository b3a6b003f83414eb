// The key/value cache of incremental decoding: every layer's keys and values of the tokens seen
// so far, so each new token costs one row of attention instead of a whole forward pass.
//
// Storage per layer is [B, capacity, Hkv, Dh], allocated once; the batch shares one length
// (prompts of different lengths are left-padded, and padding lives in its own attention segment,
// so it is never attended to).
#pragma once

#include <vector>

#include "model/config.h"
#include "runtime/tensor.h"

namespace rlaif {

// The attention segment of padding: no real token attends to it.
inline constexpr int32_t kPaddingSegment = -1;

class KVCache {
 public:
  KVCache(const ModelConfig& config, int64_t batch, int64_t capacity, Device device,
          DType dtype = DType::f32);

  int64_t batch() const { return batch_; }
  int64_t capacity() const { return capacity_; }
  // Tokens cached so far.
  int64_t length() const { return length_; }

  const Tensor& keys(int64_t layer) const { return keys_.at(static_cast<size_t>(layer)); }
  const Tensor& values(int64_t layer) const { return values_.at(static_cast<size_t>(layer)); }
  // Segment id of every cached position, [B, capacity] i32.
  const Tensor& segment_ids() const { return segment_ids_; }

  // Writes layer `layer`'s keys and values of the next tokens, [B, Tn, Hkv, Dh], at positions
  // [length, length + Tn). Error when that passes the capacity.
  void write(int64_t layer, const Tensor& k, const Tensor& v);
  // Records the segment ids of the next Tn tokens ([B, Tn] i32; undefined = all 0) at positions
  // [length, length + Tn), before the layers attend over them.
  void write_segments(int64_t tokens, const Tensor& segment_ids);
  // Moves length on by Tn once every layer has written its keys and values.
  void advance(int64_t tokens);
  // Drops the last tokens (length becomes `length`).
  void truncate(int64_t length);
  // Grows the cache to `batch` rows (at least the present count): the existing rows keep their
  // cached positions; the new ones hold zeros in the padding segment, until place_row fills them.
  void grow(int64_t batch);
  // Keeps rows `rows` (in that order, each once) and drops the others: row i becomes rows[i],
  // with its cached positions.
  void keep_rows(const std::vector<int64_t>& rows);
  // Places row `from` of another cache, its `source.length()` positions (padding included), at
  // the right end of row `row`'s cached positions, [length - n, length), and marks the row's
  // positions before them as padding (kPaddingSegment): sequences joining a batch whose other
  // rows have cached more.
  void place_row(int64_t row, const KVCache& source, int64_t from);

 private:
  void write_rows(const Tensor& cache, const Tensor& rows);

  int64_t batch_, capacity_, length_ = 0;
  std::vector<Tensor> keys_, values_;
  Tensor segment_ids_;
};

}  // namespace rlaif
