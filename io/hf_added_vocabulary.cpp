#include "io/hf_added_vocabulary.h"

#include "runtime/error.h"

namespace rlaif::hf {

namespace {

// Whether `c` (one character) is a word character as the Rust regex crate's \w defines it.
bool is_word_char(std::string_view c) {
  static const Regex word(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}])", "added tokens");
  return word.matches_somewhere(c);
}

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view key, int32_t token_index) {
  if (key.empty()) return;
  first_byte[static_cast<unsigned char>(key[0])] = true;
  int32_t node = 0;
  for (char c : key) {
    const uint64_t edge = (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(c);
    auto it = edges.find(edge);
    if (it == edges.end()) {
      const auto child = static_cast<int32_t>(terminal.size());
      terminal.push_back(-1);
      it = edges.emplace(edge, child).first;
    }
    node = it->second;
  }
  if (terminal[static_cast<size_t>(node)] < 0) terminal[static_cast<size_t>(node)] = token_index;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    index_of_id_.emplace(t.id, i);
    index_of_content_.emplace(t.content, i);
    if (t.normalized && normalizer != nullptr) {
      normalized_trie_.insert(normalizer->normalize(t.content), static_cast<int32_t>(i));
    } else {
      raw_trie_.insert(t.content, static_cast<int32_t>(i));
    }
  }
}

const AddedToken* AddedVocabulary::by_id(int32_t id) const {
  auto it = index_of_id_.find(id);
  return it == index_of_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::by_content(std::string_view content) const {
  auto it = index_of_content_.find(std::string(content));
  return it == index_of_content_.end() ? nullptr : &tokens_[it->second];
}

std::vector<AddedVocabulary::Match> AddedVocabulary::find(std::string_view text,
                                                          const Trie& trie) const {
  std::vector<Match> matches;
  if (trie.terminal.size() == 1) return matches;
  size_t start_offset = 0;  // end of the previous accepted match
  for (size_t i = 0; i < text.size();) {
    if (!trie.first_byte[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t j = i; j < text.size(); ++j) {
      const uint64_t edge =
          (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[j]);
      auto it = trie.edges.find(edge);
      if (it == trie.edges.end()) break;
      node = it->second;
      if (trie.terminal[static_cast<size_t>(node)] >= 0) {
        best = trie.terminal[static_cast<size_t>(node)];
        best_end = j + 1;
      }
    }
    if (best < 0 || i < start_offset) {
      ++i;
      continue;
    }
    const AddedToken& token = tokens_[static_cast<size_t>(best)];
    size_t begin = i, end = best_end;
    if (token.single_word) {
      bool touches_word = false;
      if (begin > 0) {
        size_t b = begin - 1;
        while (b > 0 && (static_cast<unsigned char>(text[b]) >> 6) == 0x2) --b;
        touches_word = is_word_char(text.substr(b, begin - b));
      }
      if (end < text.size()) {
        size_t e = end;
        utf8_next(text, e);
        touches_word = touches_word || is_word_char(text.substr(end, e - end));
      }
      if (touches_word) {
        // Aho-Corasick would not retry shorter tokens at this position either: move on.
        i = best_end;
        continue;
      }
    }
    if (token.lstrip) {
      size_t b = begin;
      while (b > start_offset) {
        size_t c = b - 1;
        while (c > 0 && (static_cast<unsigned char>(text[c]) >> 6) == 0x2) --c;
        size_t p = c;
        if (!is_unicode_whitespace(utf8_next(text, p))) break;
        b = c;
      }
      begin = b;
    }
    if (token.rstrip) {
      while (end < text.size()) {
        size_t p = end;
        if (!is_unicode_whitespace(utf8_next(text, p))) break;
        end = p;
      }
    }
    matches.push_back({begin, end, best});
    start_offset = end;
    i = end;
  }
  return matches;
}

std::vector<Segment> AddedVocabulary::split(std::string_view text,
                                            const Normalizer* normalizer) const {
  std::vector<Segment> out;
  auto add_text = [&](std::string_view raw, bool at_start) {
    std::string normalized =
        normalizer ? normalizer->normalize(std::string(raw)) : std::string(raw);
    size_t prev = 0;
    for (const Match& m : find(normalized, normalized_trie_)) {
      if (m.begin > prev)
        out.push_back({normalized.substr(prev, m.begin - prev), -1, at_start && prev == 0});
      out.push_back({normalized.substr(m.begin, m.end - m.begin),
                     tokens_[static_cast<size_t>(m.token_index)].id, false});
      prev = m.end;
    }
    if (prev < normalized.size() || (prev == 0 && normalized.empty())) {
      out.push_back({normalized.substr(prev), -1, at_start && prev == 0});
    }
  };
  size_t prev = 0;
  for (const Match& m : find(text, raw_trie_)) {
    if (m.begin > prev) add_text(text.substr(prev, m.begin - prev), prev == 0);
    out.push_back({std::string(text.substr(m.begin, m.end - m.begin)),
                   tokens_[static_cast<size_t>(m.token_index)].id, false});
    prev = m.end;
  }
  if (prev < text.size()) add_text(text.substr(prev), prev == 0);
  return out;
}

}  // namespace rlaif::hf
