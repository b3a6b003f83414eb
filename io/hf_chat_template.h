// A Hugging Face model's chat template: turns a conversation (a JSON array of messages such as
// {"role": "user", "content": "..."}) into the exact text the model was trained on, byte for
// byte what `tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=...)`
// returns in Python.
//
// The template is the Jinja source from the model directory: chat_template.jinja when present
// (it takes precedence, as in transformers), else tokenizer_config.json's "chat_template" — a
// string, or a list of {"name", "template"} objects of which "default" is used unless another
// name is asked for. It is rendered (io/jinja_template.h) with the variables transformers
// passes: messages, tools and documents (None unless given), add_generation_prompt, the
// special tokens of tokenizer_config.json that are set (bos_token, eos_token, unk_token,
// sep_token, pad_token, cls_token, mask_token as strings, additional_special_tokens as a list),
// any extra variables the caller supplies (enable_thinking, tools, date_string, ...), and the
// two functions transformers defines: raise_exception(message), which throws
// ChatTemplateRaised carrying the message, and strftime_now(format), the current local time
// through strftime (fixable for reproducible output).
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/chat_message.h"
#include "io/jinja_template.h"
#include "io/jinja_value.h"
#include "runtime/error.h"

namespace rlaif {

// Thrown when a template calls raise_exception(message), e.g. for roles that do not alternate.
class ChatTemplateRaised : public Error {
 public:
  explicit ChatTemplateRaised(std::string message)
      : Error("chat template raised an exception: " + message), message_(std::move(message)) {}
  // The template's own message, verbatim.
  const std::string& template_message() const { return message_; }

 private:
  std::string message_;
};

class HfChatTemplate {
 public:
  // `source`: the Jinja text; `special_tokens_json`: a JSON object such as tokenizer_config.json
  // (only the special-token keys are read; strings or {"content": ...} objects).
  HfChatTemplate(std::string_view source, std::string_view special_tokens_json);

  // Loads the template and special tokens of a Hugging Face model directory. `template_name`
  // picks one of several named templates ("default" when empty). Throws Error naming the file
  // when there is no chat template.
  static HfChatTemplate from_model_dir(const std::string& dir,
                                       const std::string& template_name = "");
  // Whether `dir` holds a chat template from_model_dir would load.
  static bool dir_has_template(const std::string& dir);

  // `messages_json`: a JSON array of message objects. `extra_context_json`: a JSON object whose
  // entries become template variables too, overriding the defaults (e.g. {"tools": [...]} or
  // {"enable_thinking": false}). Throws ChatTemplateRaised from raise_exception, Error otherwise.
  std::string render(std::string_view messages_json, bool add_generation_prompt,
                     std::string_view extra_context_json = "{}") const;
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

  // A conversation ending with an assistant message, as training text: `prompt` is everything
  // before the last message with the generation prompt (what the model is given), `completion`
  // the rest of the whole conversation's render (what it learns to write, end-of-turn tokens
  // included). prompt + completion == render(messages, false). Throws Error when the last
  // message is not the assistant's, or when the template renders earlier turns differently
  // once a later turn exists, so that no such split exists.
  struct PromptAndCompletion {
    std::string prompt;
    std::string completion;
  };
  PromptAndCompletion split_last_assistant_turn(std::string_view messages_json,
                                                std::string_view extra_context_json = "{}") const;

  // strftime_now() reports this time instead of the clock (for reproducible renders).
  void set_fixed_time(std::time_t t) { fixed_time_ = t; }
  // Bounds every render (loop iterations, output bytes); the interpreter's defaults otherwise.
  void set_render_limits(const jinja::RenderLimits& limits) { limits_ = limits; }
  const std::string& source() const { return source_; }

 private:
  std::string render_values(const jinja::Value& messages, bool add_generation_prompt,
                            const jinja::Value& extra) const;

  std::string source_;
  JinjaTemplate template_;
  jinja::Dict special_tokens_;
  std::optional<std::time_t> fixed_time_;
  jinja::RenderLimits limits_;
};

}  // namespace rlaif
