#include "io/streaming_text.h"

#include <algorithm>

namespace rlaif {
namespace {

// Bytes at the end of `text` that do not yet form a whole character: an incomplete UTF-8
// sequence, and any U+FFFD replacement characters before it (a decoder's stand-in for bytes it
// could not read yet).
size_t unfinished_tail(const std::string& text) {
  size_t end = text.size();
  for (size_t back = 1; back <= 3 && back <= end; ++back) {
    const auto c = static_cast<unsigned char>(text[end - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (need > back) end -= back;  // the sequence lacks bytes
    break;
  }
  static const std::string kReplacement = "\xEF\xBF\xBD";
  while (end >= kReplacement.size() &&
         text.compare(end - kReplacement.size(), kReplacement.size(), kReplacement) == 0) {
    end -= kReplacement.size();
  }
  return text.size() - end;
}

// The longest suffix of `text` that is a proper prefix of a stop string.
size_t possible_stop_start(const std::string& text, const std::vector<std::string>& stop) {
  size_t longest = 0;
  for (const std::string& s : stop) {
    for (size_t n = std::min(s.size() - 1, text.size()); n > longest; --n) {
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        longest = n;
        break;
      }
    }
  }
  return longest;
}

}  // namespace

StreamingText::StreamingText(const Tokenizer& tokenizer, std::vector<int32_t> prompt,
                             bool continue_prompt, std::vector<std::string> stop)
    : tokenizer_(tokenizer),
      prompt_(std::move(prompt)),
      continue_prompt_(continue_prompt),
      stop_(std::move(stop)) {
  std::erase_if(stop_, [](const std::string& s) { return s.empty(); });
  if (continue_prompt_) before_ = tokenizer_.decode(prompt_);
}

std::string StreamingText::advance(const Generation& so_far, bool final) {
  if (stopped_) return {};
  std::vector<int32_t> ids = so_far.tokens;
  if (so_far.stopped_at_eos && !ids.empty()) ids.pop_back();
  // As finish_completion decodes the whole generation.
  std::string text;
  bool decoded = false;
  if (continue_prompt_) {
    std::vector<int32_t> all = prompt_;
    all.insert(all.end(), ids.begin(), ids.end());
    text = tokenizer_.decode(all);
    if (text.compare(0, before_.size(), before_) == 0) {
      text.erase(0, before_.size());
      decoded = true;
    }
  }
  if (!decoded) text = tokenizer_.decode(ids);

  // A stop string can only begin where the last piece's held-back text began, or later.
  size_t cut = std::string::npos;
  for (const std::string& s : stop_) {
    const size_t from = sent_.size() >= s.size() ? sent_.size() - s.size() + 1 : 0;
    cut = std::min(cut, text.find(s, from));
  }
  if (cut != std::string::npos) {
    text.resize(cut);
    stopped_ = true;
  } else if (!final) {
    text.resize(text.size() - unfinished_tail(text));
    text.resize(text.size() - possible_stop_start(text, stop_));
  }
  // Text already sent cannot be taken back: a piece only ever extends it. (A decoder that
  // rewrote earlier text as tokens arrive would leave the difference unsent.)
  if (text.size() <= sent_.size() || text.compare(0, sent_.size(), sent_) != 0) return {};
  std::string piece = text.substr(sent_.size());
  sent_ = std::move(text);
  return piece;
}

}  // namespace rlaif
