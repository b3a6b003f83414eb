// Added tokens of a Hugging Face tokenizer ("added_tokens" in tokenizer.json): strings such as
// "<|im_start|>" that are found in the text before anything else runs and become one id each,
// never split or merged.
//
// As in the Rust crate's AddedVocabulary, tokens with normalized=false are searched for in the
// raw text first; the text between them is normalized, and tokens with normalized=true (whose
// contents are normalized the same way) are searched for in that. The search takes the leftmost
// match, and the longest of those starting there. A match of a single_word token counts only
// when no word character (\w) touches it; lstrip and rstrip tokens also swallow the whitespace
// to their left and right. Special tokens are the ones decode can skip.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/hf_normalizer.h"
#include "io/hf_text.h"

namespace rlaif::hf {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

// A piece of the input: either an added token (id >= 0) or normalized text for the
// pre-tokenizer, with whether it starts the input.
struct Segment {
  std::string text;
  int32_t added_id = -1;
  bool at_start = false;
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  // `normalizer` may be null; it normalizes the contents of normalized=true tokens.
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // Splits `text` at the added tokens, normalizing the rest with `normalizer` (may be null).
  std::vector<Segment> split(std::string_view text, const Normalizer* normalizer) const;

  const AddedToken* by_id(int32_t id) const;
  const AddedToken* by_content(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // Byte trie over token contents; leftmost-longest search.
  struct Trie {
    std::unordered_map<uint64_t, int32_t> edges;  // (node << 8 | byte) -> child node
    std::vector<int32_t> terminal;                // node -> index into tokens_, or -1
    bool first_byte[256] = {};
    Trie() : terminal(1, -1) {}
    void insert(std::string_view key, int32_t token_index);
  };
  struct Match {
    size_t begin, end;
    int32_t token_index;
  };
  std::vector<Match> find(std::string_view text, const Trie& trie) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> index_of_id_;
  std::unordered_map<std::string, size_t> index_of_content_;
  Trie raw_trie_, normalized_trie_;
};

}  // namespace rlaif::hf
