// Byte-pair encoding, the model of GPT-2, Llama 3, Qwen and Gemma tokenizers (Sennrich et al.,
// 2016). A word starts as its characters (each looked up in the vocabulary) and the adjacent pair
// with the lowest merge rank is merged, leftmost first, until no pair has a merge. Pairs live in
// a doubly linked list with a min-heap of candidate merges, so a word of n characters costs
// O(n log n) — Gemma's pre-tokenizer leaves whole lines as one word.
//
// Options follow the Rust `tokenizers` crate: `ignore_merges` (a word that is itself in the
// vocabulary is one token), `byte_fallback` (an unknown character becomes its "<0xAB>" byte
// tokens), `unk_token` with `fuse_unk` (runs of unknown characters become one unk),
// `continuing_subword_prefix` and `end_of_word_suffix`. Dropout is not supported.
//
// Results of short words are cached; every method is safe to call from many threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "io/hf_json.h"

namespace rlaif::hf {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct BpeOptions {
  std::string unk_token;  // empty: none
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
};

// How many ids a vocabulary may leave unused (ids past its token count). Real vocabularies are
// dense; the bound keeps the tables indexed by id proportional to the file.
inline constexpr int64_t kMaxUnusedIds = int64_t{1} << 20;

class BpeModel {
 public:
  // `merges` in rank order. Error naming `origin` when a merge uses a token the vocabulary lacks,
  // or when the largest id leaves more than kMaxUnusedIds ids unused.
  BpeModel(TokenMap vocab, const std::vector<std::pair<std::string, std::string>>& merges,
           BpeOptions options, std::string origin);
  // The "model" object of tokenizer.json (type BPE).
  static std::unique_ptr<BpeModel> from_json(const Json& model, const std::string& file);
  // GPT-2's vocab.json (token -> id) and merges.txt ("a b" per line after a "#version" header).
  static std::unique_ptr<BpeModel> from_files(const std::string& vocab_path,
                                              const std::string& merges_path);

  // Appends the ids of one pre-tokenized word.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // nullptr when no token has this id.
  const std::string* id_to_token(int32_t id) const;
  int32_t max_id() const { return static_cast<int32_t>(tokens_.size()) - 1; }
  const std::string& origin() const { return origin_; }

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  TokenMap vocab_;
  std::vector<std::string> tokens_;  // by id; empty where no token has the id
  std::vector<bool> has_token_;
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  std::unordered_map<uint64_t, Merge> merges_;
  BpeOptions options_;
  int32_t unk_id_ = -1;
  std::array<int32_t, 256> byte_ids_{};  // "<0xAB>" token ids, -1 where missing
  std::string origin_;

  // Word -> ids for words up to kCacheWordBytes, in shards to keep threads apart.
  static constexpr size_t kCacheShards = 16;
  static constexpr size_t kCacheWordBytes = 256;
  static constexpr size_t kCacheShardEntries = 8192;
  struct CacheShard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  mutable std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace rlaif::hf
