#include "io/hf_pre_tokenizer.h"

#include <algorithm>

#include "io/hf_text.h"
#include "runtime/error.h"

namespace rlaif::hf {

std::vector<std::pair<size_t, size_t>> split_pieces(
    size_t text_size, const std::vector<std::pair<size_t, size_t>>& matches, SplitBehavior behavior,
    bool invert) {
  // The text as alternating (range, is_match) runs covering it entirely.
  struct Run {
    size_t begin, end;
    bool is_match;
  };
  std::vector<Run> runs;
  size_t prev = 0;
  for (const auto& [begin, end] : matches) {
    if (begin > prev) runs.push_back({prev, begin, invert});
    runs.push_back({begin, end, !invert});
    prev = end;
  }
  if (prev < text_size) runs.push_back({prev, text_size, invert});

  std::vector<std::pair<size_t, size_t>> pieces;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::removed:
      for (const Run& r : runs) {
        if (!r.is_match) pieces.emplace_back(r.begin, r.end);
      }
      break;
    case SplitBehavior::isolated:
      for (const Run& r : runs) pieces.emplace_back(r.begin, r.end);
      break;
    case SplitBehavior::merged_with_previous:
      // A match joins the piece before it, unless that piece was itself a match.
      for (const Run& r : runs) {
        if (r.is_match && !previous_match && !pieces.empty()) {
          pieces.back().second = r.end;
        } else {
          pieces.emplace_back(r.begin, r.end);
        }
        previous_match = r.is_match;
      }
      break;
    case SplitBehavior::merged_with_next:
      // Mirror image: walk backwards, a match joins the piece after it.
      for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
        if (it->is_match && !previous_match && !pieces.empty()) {
          pieces.back().first = it->begin;
        } else {
          pieces.emplace_back(it->begin, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
    case SplitBehavior::contiguous:
      // Runs of the same kind fuse (only matches can be adjacent: runs alternate otherwise).
      for (const Run& r : runs) {
        if (r.is_match == previous_match && !pieces.empty()) {
          pieces.back().second = r.end;
        } else {
          pieces.emplace_back(r.begin, r.end);
        }
        previous_match = r.is_match;
      }
      break;
  }
  std::erase_if(pieces, [](const auto& p) { return p.first == p.second; });
  return pieces;
}

namespace {

// Cuts every word at the matches of a regular expression.
void split_words(std::vector<Word>& words, const Regex& regex, SplitBehavior behavior,
                 bool invert) {
  std::vector<Word> out;
  out.reserve(words.size() * 2);
  for (Word& w : words) {
    const auto pieces = split_pieces(w.text.size(), regex.find_all(w.text), behavior, invert);
    for (const auto& [begin, end] : pieces) {
      out.push_back({w.text.substr(begin, end - begin), w.at_start && begin == 0});
    }
  }
  words = std::move(out);
}

class Split : public PreTokenizer {
 public:
  Split(const std::string& pattern, SplitBehavior behavior, bool invert, const std::string& origin)
      : regex_(pattern, origin), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Word>& words) const override {
    split_words(words, regex_, behavior_, invert_);
  }

 private:
  Regex regex_;
  SplitBehavior behavior_;
  bool invert_;
};

// GPT-2's word pattern, as the Rust crate's ByteLevel pre-tokenizer writes it.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevel : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex, const std::string& origin)
      : add_prefix_space_(add_prefix_space),
        regex_(use_regex ? std::make_unique<Regex>(kGpt2Pattern, origin) : nullptr) {}
  void pre_tokenize(std::vector<Word>& words) const override {
    if (add_prefix_space_) {
      for (Word& w : words) {
        if (!w.text.starts_with(' ')) w.text.insert(0, 1, ' ');
      }
    }
    if (regex_) split_words(words, *regex_, SplitBehavior::isolated, false);
    const auto& chars = byte_level_chars();
    for (Word& w : words) {
      std::string mapped;
      mapped.reserve(w.text.size() * 2);
      for (char c : w.text) mapped += chars[static_cast<unsigned char>(c)];
      w.text = std::move(mapped);
    }
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

enum class PrependScheme { always, first, never };

class Metaspace : public PreTokenizer {
 public:
  Metaspace(std::string replacement, PrependScheme scheme, bool split, const std::string& origin)
      : replacement_(std::move(replacement)),
        scheme_(scheme),
        split_(split),
        replacement_regex_(escape_regex(replacement_), origin) {}
  void pre_tokenize(std::vector<Word>& words) const override {
    for (Word& w : words) {
      std::string replaced;
      replaced.reserve(w.text.size());
      for (char c : w.text) {
        if (c == ' ') {
          replaced += replacement_;
        } else {
          replaced += c;
        }
      }
      w.text = std::move(replaced);
      const bool prepend =
          scheme_ == PrependScheme::always || (scheme_ == PrependScheme::first && w.at_start);
      if (prepend && !w.text.starts_with(replacement_)) w.text.insert(0, replacement_);
    }
    if (split_) split_words(words, replacement_regex_, SplitBehavior::merged_with_next, false);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
  Regex replacement_regex_;
};

class Sequence : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<Word>& words) const override {
    for (const auto& p : parts_) p->pre_tokenize(words);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

SplitBehavior behavior_of(const std::string& name, const std::string& origin) {
  if (name == "Removed") return SplitBehavior::removed;
  if (name == "Isolated") return SplitBehavior::isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (name == "MergedWithNext") return SplitBehavior::merged_with_next;
  if (name == "Contiguous") return SplitBehavior::contiguous;
  throw Error(origin, ": unsupported split behavior \"", name, "\"");
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& json, const std::string& file) {
  const std::string origin = component_origin(file, "pre_tokenizer", json);
  const std::string type = type_of(json, origin);
  if (type == "Split") {
    return std::make_unique<Split>(pattern_member(json, "pattern", origin),
                                   behavior_of(string_member(json, "behavior", origin), origin),
                                   bool_member(json, "invert", origin, false), origin);
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevel>(bool_member(json, "add_prefix_space", origin, true),
                                       bool_member(json, "use_regex", origin, true), origin);
  }
  if (type == "Metaspace") {
    const std::string replacement = string_member(json, "replacement", origin, "\xE2\x96\x81");
    RLAIF_CHECK(utf8_chars(replacement).size() == 1, origin,
                ": \"replacement\" must be one character");
    PrependScheme scheme = bool_member(json, "add_prefix_space", origin, true)
                               ? PrependScheme::always
                               : PrependScheme::never;
    if (member(json, "prepend_scheme") != nullptr) {
      const std::string s = string_member(json, "prepend_scheme", origin);
      if (s == "always") {
        scheme = PrependScheme::always;
      } else if (s == "first") {
        scheme = PrependScheme::first;
      } else if (s == "never") {
        scheme = PrependScheme::never;
      } else {
        throw Error(origin, ": unsupported prepend_scheme \"", s, "\"");
      }
    }
    return std::make_unique<Metaspace>(replacement, scheme,
                                       bool_member(json, "split", origin, true), origin);
  }
  if (type == "Digits") {
    const bool individual = bool_member(json, "individual_digits", origin, false);
    return std::make_unique<Split>(R"(\p{N})",
                                   individual ? SplitBehavior::isolated : SplitBehavior::contiguous,
                                   false, origin);
  }
  if (type == "Whitespace") {
    return std::make_unique<Split>(R"(\w+|[^\w\s]+)", SplitBehavior::removed, true, origin);
  }
  if (type == "WhitespaceSplit") {
    return std::make_unique<Split>(R"(\s+)", SplitBehavior::removed, false, origin);
  }
  if (type == "Sequence") {
    const Json* list = member(json, "pretokenizers");
    RLAIF_CHECK(list != nullptr && list->IsArray(), origin, ": \"pretokenizers\" must be a list");
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const Json& p : list->GetArray()) parts.push_back(make_pre_tokenizer(p, file));
    return std::make_unique<Sequence>(std::move(parts));
  }
  throw Error(origin, ": unsupported pre_tokenizer type \"", type, "\"");
}

}  // namespace rlaif::hf
