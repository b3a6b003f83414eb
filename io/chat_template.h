// How a conversation becomes the text a model is trained on and prompted with. Two kinds:
//
// A model's own Jinja chat template (io/hf_chat_template.h), as Hugging Face model directories
// carry it: the text is exactly what transformers' apply_chat_template gives, special tokens
// (BOS, turn markers) included, and it is tokenized without adding any.
//
// A single-slot template: any text holding "{prompt}" exactly once, everything else copied
// verbatim. The default is the prompt format of the seed paper's (Anthropic-style) dialogue data:
//   "Human: {prompt}\n\nAssistant: "
// after which the model writes its answer. Earlier turns of a conversation go inside the slot
// (system turns first, each followed by a blank line):
//   "system\n\nuser 1\n\nAssistant: reply 1\n\nHuman: user 2"
// so that the default template gives the whole transcript. The tokenizer adds its own BOS when
// it declares one (Tokenizer::adds_bos) and the reply ends with the tokenizer's EOS.
//
// Which one a command uses (for_model): --chat-template when given, else the model directory's
// own template, else the default.
//
// Training on a conversation (training_sequences): the assistant replies are the trained parts,
// everything else is context. Their spans come from the rendering itself: reply i spans from
// the end of render(turns before i, generation prompt) to the end of render(turns up to i),
// both prefixes of the whole conversation's render. Templates that render an earlier reply
// differently once later turns follow (Qwen3 drops earlier reasoning blocks) have no such
// spans; their conversations become one sequence per reply, each the conversation cut after
// it, which is exactly what the model sees when it writes that reply.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/chat_message.h"

namespace rlaif {

class HfChatTemplate;

class ChatTemplate {
 public:
  static constexpr std::string_view kPlaceholder = "{prompt}";
  static constexpr std::string_view kDefault = "Human: {prompt}\n\nAssistant: ";

  // The default template.
  ChatTemplate();
  // A single-slot template. Throws Error quoting `text` when "{prompt}" is missing or appears
  // more than once.
  explicit ChatTemplate(std::string text);
  // A model's Jinja template; `origin` says where it came from (for describe()).
  ChatTemplate(std::shared_ptr<const HfChatTemplate> jinja, std::string origin);
  // For single-slot templates typed on a command line: turns the escapes \n, \t and \\ into the
  // characters, then constructs as above. Error on any other backslash escape.
  static ChatTemplate from_escaped(std::string_view text);
  // The template a command uses for the model in `model_dir`. `flag` is --chat-template's value
  // ("" when not given): the path of an existing file is a Jinja template (rendered with the
  // special tokens of the directory's tokenizer_config.json), any other text a single-slot
  // template with escapes. Without a flag: the directory's own template (chat_template.jinja or
  // tokenizer_config.json's "chat_template"), else the default.
  static ChatTemplate for_model(const std::string& model_dir, const std::string& flag);

  bool is_jinja() const { return jinja_ != nullptr; }
  // One line for logs: "the chat template of DIR/tokenizer_config.json" or the single-slot text
  // with its newlines escaped.
  std::string describe() const;

  // One user turn, ready for the reply.
  std::string apply(std::string_view prompt) const;
  // A conversation whose last turn is the user's (system turns allowed anywhere for the
  // single-slot kind, wherever the template allows them for Jinja), ready for the reply.
  std::string render_prompt(const Conversation& conversation) const;

  struct Segment {
    std::string text;
    bool trained = false;  // an assistant reply (with its end-of-turn markers)
  };
  using Sequence = std::vector<Segment>;  // concatenated: the text of one training sequence
  struct TrainingText {
    std::vector<Sequence> sequences;
    bool one_per_reply = false;  // the template rewrites earlier replies (see the header)
  };
  // The training text of a conversation ending with the assistant's reply. Every reply is
  // trained, or only the last with `last_reply_only`; either way every reply is a segment of its
  // own, so a sequence is cut (and tokenized) the same whichever replies are trained. For the
  // single-slot kind the last segment is the last reply (without EOS: the tokenizing side
  // appends it). Throws Error when turns do
  // not alternate (single-slot) or the template cannot split off the last reply.
  TrainingText training_text(const Conversation& conversation, bool last_reply_only) const;

  // The single-slot text (Error for a Jinja template).
  const std::string& text() const;

 private:
  TrainingText single_slot_training_text(const Conversation& conversation,
                                         bool last_reply_only) const;
  TrainingText jinja_training_text(const Conversation& conversation, bool last_reply_only) const;

  std::string text_;
  std::string before_;  // text up to the placeholder
  std::string after_;   // text after it
  std::shared_ptr<const HfChatTemplate> jinja_;
  std::string origin_;
};

}  // namespace rlaif
