// Pre-tokenizers of Hugging Face tokenizers: cut normalized text into the words that the model
// (BPE) encodes one at a time; no merge ever crosses a word boundary. Supported: Split (String or
// Regex pattern, behaviors Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous,
// invert), ByteLevel (GPT-2's regex and byte-to-character mapping), Metaspace (spaces become
// "▁"; prepend_scheme always/first/never; split), Digits, Whitespace, WhitespaceSplit, Sequence.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/hf_json.h"

namespace rlaif::hf {

// One piece of text on its way to the model. `at_start` is true only for the piece that begins
// at offset 0 of the original input (Metaspace's "first" scheme prepends "▁" there alone).
struct Word {
  std::string text;
  bool at_start = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `words` by their refinement; empty pieces are dropped.
  virtual void pre_tokenize(std::vector<Word>& words) const = 0;
};

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& json, const std::string& file);

enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

// The pieces [begin, end) of `text` left by cutting it at the `matches` (sorted,
// non-overlapping [begin, end) ranges) with `behavior`, as the Rust crate's
// NormalizedString::split does; `invert` swaps the roles of matches and the text between them.
std::vector<std::pair<size_t, size_t>> split_pieces(
    size_t text_size, const std::vector<std::pair<size_t, size_t>>& matches, SplitBehavior behavior,
    bool invert);

}  // namespace rlaif::hf
