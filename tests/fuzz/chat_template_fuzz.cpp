// Fuzzes chat templates: the Jinja lexer, parser and interpreter (io/jinja_*.h) through a model's
// template (io/hf_chat_template.h), the single-slot kind, and the training split of
// io/chat_template.h, with hostile messages. The first byte picks the kind (even: Jinja, odd:
// single-slot text with escapes); the rest is, separated by fuzz::kPartSeparator:
//   TEMPLATE, MESSAGES (a JSON array), EXTRA CONTEXT (a JSON object), SPECIAL TOKENS (a JSON
//   object such as tokenizer_config.json)
// Parts left out get defaults: hostile messages (template syntax, NULs, invalid UTF-8, odd roles).
#include <memory>

#include "io/chat_template.h"
#include "io/hf_chat_template.h"
#include "io/jinja_json.h"
#include "runtime/error.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

const std::string_view kDefaultMessages =
    R"([{"role": "system", "content": "{{ raise_exception('x') }}{% for %}"},)"
    R"( {"role": "user", "content": "Hi \u0000 {prompt} <|im_end|> \ud800"},)"
    R"( {"role": "assistant", "content": "{% endfor %}\n\n"},)"
    R"( {"role": "tool", "content": ""},)"
    R"( {"role": "user", "content": "again"},)"
    R"( {"role": "assistant", "content": "done"}])";

// The conversation of a messages array, where each message has string role and content.
std::optional<rlaif::Conversation> conversation_of(const rlaif::jinja::Value& messages) {
  if (!messages.is_list()) return std::nullopt;
  rlaif::Conversation out;
  for (const rlaif::jinja::Value& m : messages.as_list()) {
    if (!m.is_dict()) return std::nullopt;
    const rlaif::jinja::Value* role = m.as_dict().find("role");
    const rlaif::jinja::Value* content = m.as_dict().find("content");
    if (!role || !content || !role->is_string() || !content->is_string()) return std::nullopt;
    out.push_back({role->as_string(), content->as_string()});
  }
  return out;
}

void exercise(const rlaif::ChatTemplate& chat, const rlaif::Conversation& conversation) {
  using namespace rlaif;
  try {
    (void)chat.render_prompt(conversation);
  } catch (const Error&) {
  }
  for (bool last_only : {false, true}) {
    try {
      (void)chat.training_text(conversation, last_only);
    } catch (const Error&) {
    }
  }
  if (!conversation.empty()) {
    try {
      (void)chat.apply(conversation.front().content);
    } catch (const Error&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rlaif;
  if (size == 0) return 0;
  const bool jinja_kind = data[0] % 2 == 0;
  std::vector<std::string_view> parts =
      fuzz::split_parts(fuzz::as_text(data + 1, size - 1), fuzz::kPartSeparator, 4);
  const std::string_view source = parts[0];
  const std::string_view messages_json = parts.size() > 1 ? parts[1] : kDefaultMessages;
  const std::string_view extra_json = parts.size() > 2 ? parts[2] : "{}";
  const std::string_view specials_json =
      parts.size() > 3 ? parts[3] : R"({"bos_token": "<s>", "eos_token": "</s>"})";

  std::optional<Conversation> conversation;
  try {
    conversation = conversation_of(jinja::value_from_json_text(messages_json, "messages"));
  } catch (const Error&) {
  }

  if (!jinja_kind) {
    try {
      const ChatTemplate chat = ChatTemplate::from_escaped(source);
      if (conversation) exercise(chat, *conversation);
    } catch (const Error&) {
    }
    return 0;
  }

  std::shared_ptr<HfChatTemplate> hf;
  try {
    hf = std::make_shared<HfChatTemplate>(source, specials_json);
  } catch (const Error&) {
    return 0;
  }
  hf->set_fixed_time(0);
  // Small limits keep each input fast; the limits themselves are what is being checked.
  jinja::RenderLimits limits;
  limits.max_iterations = 20'000;
  limits.max_output_bytes = 1 << 20;
  hf->set_render_limits(limits);
  for (bool generation_prompt : {false, true}) {
    try {
      (void)hf->render(messages_json, generation_prompt, extra_json);
    } catch (const Error&) {
    }
  }
  try {
    (void)hf->split_last_assistant_turn(messages_json, extra_json);
  } catch (const Error&) {
  }
  if (conversation) exercise(ChatTemplate(hf, "the fuzzed template"), *conversation);
  return 0;
}
