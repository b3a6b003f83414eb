// How a bare instruction becomes the text a model is trained on and prompted with.
//
// The default is the prompt format of the seed paper's (Anthropic-style) dialogue data:
//   "Human: {prompt}\n\nAssistant: "
// after which the model writes its answer. A custom template is any text holding "{prompt}"
// exactly once; everything else is copied verbatim (no other placeholders, no escapes).
#pragma once

#include <string>
#include <string_view>

namespace rlaif {

class ChatTemplate {
 public:
  static constexpr std::string_view kPlaceholder = "{prompt}";
  static constexpr std::string_view kDefault = "Human: {prompt}\n\nAssistant: ";

  // The default template.
  ChatTemplate();
  // Throws Error quoting `text` when "{prompt}" is missing or appears more than once.
  explicit ChatTemplate(std::string text);
  // For templates typed on a command line: turns the escapes \n, \t and \\ into the characters,
  // then constructs as above. Error on any other backslash escape.
  static ChatTemplate from_escaped(std::string_view text);

  // The template with `prompt` in place of "{prompt}". The prompt is inserted literally, even
  // when it contains "{prompt}" itself.
  std::string apply(std::string_view prompt) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::string before_;  // text up to the placeholder
  std::string after_;   // text after it
};

}  // namespace rlaif
