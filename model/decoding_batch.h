// A batch of sequences decoded together one token at a time, whose finished rows can take new
// prompts while the others go on: what generate() runs, and what a server uses for continuous
// batching.
//
// The KV cache is one rectangle [rows, capacity]: every row has cached the same number of
// positions, length(). The first prompts are left-padded to the longest, and a prompt that joins
// later is prefilled alone and placed at the right end of its row's cached positions, the rest of
// the row marked as padding (its own attention segment). Real tokens' positions start at 0 in
// every row, so each sequence computes what it would alone; its first token comes from exactly
// the logits it would have alone (the same single-row prefill).
//
//   decode step:   every row feeds its last token; the cache grows by one position
//   join(r, p):    row r (ended) gets p's keys and values at [length - |p|, length), padding
//                  before them, and p's last logits, so the next sample() gives its first token
//
// Sampling randomness comes from each row's own seed and stream and its own token count
// (model/sampling.h), so neither batching nor joining changes the sampled tokens, and rows of
// different seeds share a batch.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/generate.h"
#include "model/kv_cache.h"
#include "model/transformer.h"

namespace rlaif {

// What a batch that others will join makes its cache: this many times the positions its first
// sequences need (at most the context), room for sequences to join it for a while before it
// must drain.
inline constexpr int64_t kJoinRoomFactor = 4;

class DecodingBatch {
 public:
  // `capacity`: cached positions, at most the model's context. Every row can receive tokens
  // until length() reaches it.
  DecodingBatch(const Transformer& model, SamplingOptions sampling, std::vector<int32_t> eos_ids,
                int64_t capacity);

  // Prefills the first prompts together, one row each (non-empty, at most capacity - 1 tokens).
  // `seeds` (one per prompt, default: every row the batch's sampling seed) and `stream_ids`
  // (default 0, 1, 2, ...) pick each row's sampling stream (model/sampling.h).
  void start(const std::vector<std::vector<int32_t>>& prompts, std::vector<uint64_t> stream_ids,
             const std::vector<uint64_t>& seeds = {});

  int64_t rows() const { return static_cast<int64_t>(rows_.size()); }
  int64_t length() const { return cache_ ? cache_->length() : 0; }
  int64_t capacity() const { return capacity_; }
  // New tokens every live row can still receive (the last one sampled needs no cached position).
  int64_t room() const { return capacity_ - length(); }
  bool live(int64_t row) const { return rows_.at(static_cast<size_t>(row)).live; }
  bool any_live() const;
  const Generation& generation(int64_t row) const { return rows_.at(static_cast<size_t>(row)).out; }

  // Samples the next token of every live row from the last logits and appends it to the row's
  // generation; returns those rows. A row whose token is an EOS id ends. Error when there is no
  // room.
  std::vector<int64_t> sample();
  // Ends a live row: it receives no more tokens (its slot can take a join).
  void end_row(int64_t row);
  // Runs one decoding step: every row's last token through the model (ended rows too, a row
  // added empty with token 0; their outputs are ignored, and a rectangular batch is cheaper than
  // re-packing it).
  void decode();

  // Adds `n` rows, ended (free for join()): the cache and the last logits grow, the existing rows
  // unchanged. For a batch that started with fewer sequences than may join it.
  void add_rows(int64_t n);

  // Keeps rows `rows` (in that order, each once), dropping the others: row i becomes rows[i].
  void keep_rows(const std::vector<int64_t>& rows);
  // Drops the ended rows once they are half the batch or more (computing them would cost as much
  // as the rows still generating); returns the old numbers of the rows kept, in their new order
  // (empty: nothing dropped).
  std::vector<int64_t> drop_ended_rows();
  int64_t live_rows() const;

  // Whether a prompt of `tokens` tokens can join now: it fits left of the cached positions.
  bool can_join(int64_t tokens) const { return tokens > 0 && tokens <= length() && room() > 0; }
  // Prefills `prompts` together (left-padded to the longest of them, as start() does) into ended
  // rows `rows`, one each, with their sampling streams (see the top of this file). Error unless
  // every prompt can_join() and every row has ended.
  void join(const std::vector<int64_t>& rows, const std::vector<std::vector<int32_t>>& prompts,
            const std::vector<uint64_t>& stream_ids, const std::vector<uint64_t>& seeds = {});
  void join(int64_t row, const std::vector<int32_t>& prompt, uint64_t stream_id) {
    join(std::vector<int64_t>{row}, {prompt}, {stream_id});
  }

 private:
  struct Row {
    Generation out;
    bool live = false;
    uint64_t seed = 0, stream = 0;
    int32_t next_position = 0;
  };

  const Transformer& model_;
  SamplingOptions sampling_;
  std::vector<int32_t> eos_ids_;
  int64_t capacity_;
  std::vector<Row> rows_;
  std::unique_ptr<KVCache> cache_;
  Tensor logits_;  // [rows, vocab]: the next token's logits of every row
  Tensor uniforms_host_, tokens_;
};

}  // namespace rlaif
