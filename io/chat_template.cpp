#include "io/chat_template.h"

#include "runtime/error.h"

namespace rlaif {

ChatTemplate::ChatTemplate() : ChatTemplate(std::string(kDefault)) {}

ChatTemplate::ChatTemplate(std::string text) : text_(std::move(text)) {
  size_t at = text_.find(kPlaceholder);
  RLAIF_CHECK(at != std::string::npos, "chat template \"", text_, "\" has no ", kPlaceholder,
              " placeholder for the prompt");
  RLAIF_CHECK(text_.find(kPlaceholder, at + 1) == std::string::npos, "chat template \"", text_,
              "\" holds ", kPlaceholder, " more than once");
  before_ = text_.substr(0, at);
  after_ = text_.substr(at + kPlaceholder.size());
}

ChatTemplate ChatTemplate::from_escaped(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    RLAIF_CHECK(i + 1 < text.size(), "chat template \"", text, "\" ends with a lone backslash");
    char c = text[++i];
    if (c == 'n')
      out += '\n';
    else if (c == 't')
      out += '\t';
    else if (c == '\\')
      out += '\\';
    else
      throw Error("chat template \"", text, "\": unknown escape \\", c, " (use \\n, \\t or \\\\)");
  }
  return ChatTemplate(std::move(out));
}

std::string ChatTemplate::apply(std::string_view prompt) const {
  std::string out;
  out.reserve(before_.size() + prompt.size() + after_.size());
  out.append(before_).append(prompt).append(after_);
  return out;
}

}  // namespace rlaif
