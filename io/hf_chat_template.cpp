#include "io/hf_chat_template.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "io/jinja_json.h"

namespace rlaif {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  RLAIF_CHECK(in, "chat template: cannot read ", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A special token as transformers' special_tokens_map holds it: the string, or the "content" of
// an AddedToken object; nullopt when unset.
std::optional<jinja::Value> token_text(const jinja::Value& v) {
  if (v.is_string()) return v;
  if (v.is_dict()) {
    if (const jinja::Value* content = v.as_dict().find("content");
        content && content->is_string()) {
      return *content;
    }
  }
  return std::nullopt;
}

jinja::Dict read_special_tokens(std::string_view config_json) {
  jinja::Value config = jinja::value_from_json_text(config_json, "tokenizer config");
  RLAIF_CHECK(config.is_dict(), "tokenizer config: expected a JSON object");
  jinja::Dict tokens;
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                          "cls_token", "mask_token"}) {
    if (const jinja::Value* v = config.as_dict().find(key)) {
      if (auto text = token_text(*v)) tokens.set(key, *text);
    }
  }
  if (const jinja::Value* extra = config.as_dict().find("additional_special_tokens");
      extra && extra->is_list() && !extra->as_list().empty()) {
    jinja::List list;
    for (const jinja::Value& item : extra->as_list()) {
      if (auto text = token_text(item)) list.push_back(*text);
    }
    tokens.set("additional_special_tokens", jinja::Value(std::move(list)));
  }
  return tokens;
}

std::string pick_template(const jinja::Value& chat_template, const std::string& name,
                          const std::string& where) {
  if (chat_template.is_string()) {
    RLAIF_CHECK(name.empty() || name == "default", where,
                ": has a single chat template, not one named '", name, "'");
    return chat_template.as_string();
  }
  RLAIF_CHECK(chat_template.is_list(), where, ": \"chat_template\" must be a string or a list");
  const std::string wanted = name.empty() ? "default" : name;
  std::string names;
  for (const jinja::Value& entry : chat_template.as_list()) {
    if (!entry.is_dict()) continue;
    const jinja::Value* entry_name = entry.as_dict().find("name");
    const jinja::Value* text = entry.as_dict().find("template");
    if (entry_name == nullptr || text == nullptr || !text->is_string()) continue;
    if (entry_name->str() == wanted) return text->as_string();
    names += (names.empty() ? "" : ", ") + entry_name->str();
  }
  throw Error(where, ": no chat template named '", wanted, "' (it has: ", names, ")");
}

jinja::Value function(std::string name, std::function<jinja::Value(const jinja::CallArgs&)> body) {
  auto f = std::make_shared<jinja::Function>();
  f->name = std::move(name);
  f->call = std::move(body);
  return jinja::Value(std::move(f));
}

}  // namespace

HfChatTemplate::HfChatTemplate(std::string_view source, std::string_view special_tokens_json)
    : source_(source),
      template_(source),
      special_tokens_(read_special_tokens(special_tokens_json)) {}

HfChatTemplate HfChatTemplate::from_model_dir(const std::string& dir,
                                              const std::string& template_name) {
  namespace fs = std::filesystem;
  fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  std::string config_text = fs::exists(config_path) ? read_file(config_path) : "{}";
  fs::path jinja_path = fs::path(dir) / "chat_template.jinja";
  if (fs::exists(jinja_path) && template_name.empty()) {
    return HfChatTemplate(read_file(jinja_path), config_text);
  }
  jinja::Value config = jinja::value_from_json_text(config_text, config_path.string());
  RLAIF_CHECK(config.is_dict(), config_path.string(), ": expected a JSON object");
  const jinja::Value* chat_template = config.as_dict().find("chat_template");
  RLAIF_CHECK(chat_template != nullptr && !chat_template->is_none(), "chat template: ", dir,
              " has neither chat_template.jinja nor a \"chat_template\" in tokenizer_config.json");
  return HfChatTemplate(pick_template(*chat_template, template_name, config_path.string()),
                        config_text);
}

bool HfChatTemplate::dir_has_template(const std::string& dir) {
  namespace fs = std::filesystem;
  if (fs::exists(fs::path(dir) / "chat_template.jinja")) return true;
  const fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  if (!fs::exists(config_path)) return false;
  jinja::Value config = jinja::value_from_json_text(read_file(config_path), config_path.string());
  const jinja::Value* chat_template =
      config.is_dict() ? config.as_dict().find("chat_template") : nullptr;
  return chat_template != nullptr && !chat_template->is_none();
}

namespace {

jinja::Value parse_messages(std::string_view messages_json) {
  jinja::Value messages = jinja::value_from_json_text(messages_json, "chat messages");
  RLAIF_CHECK(messages.is_list(), "chat messages: expected a JSON array of message objects");
  return messages;
}

jinja::Value parse_extra_context(std::string_view extra_context_json) {
  jinja::Value extra = jinja::value_from_json_text(extra_context_json, "chat template context");
  RLAIF_CHECK(extra.is_dict(), "chat template context: expected a JSON object");
  return extra;
}

}  // namespace

std::string HfChatTemplate::render(std::string_view messages_json, bool add_generation_prompt,
                                   std::string_view extra_context_json) const {
  return render_values(parse_messages(messages_json), add_generation_prompt,
                       parse_extra_context(extra_context_json));
}

HfChatTemplate::PromptAndCompletion HfChatTemplate::split_last_assistant_turn(
    std::string_view messages_json, std::string_view extra_context_json) const {
  jinja::Value messages = parse_messages(messages_json);
  jinja::Value extra = parse_extra_context(extra_context_json);
  const jinja::List& all = messages.as_list();
  RLAIF_CHECK(!all.empty() && all.back().is_dict() && all.back().as_dict().find("role") &&
                  all.back().as_dict().find("role")->str() == "assistant",
              "chat template: splitting prompt and completion needs a conversation that ends "
              "with an assistant message");
  jinja::Value earlier(jinja::List(all.begin(), all.end() - 1));
  PromptAndCompletion out;
  out.prompt = render_values(earlier, true, extra);
  std::string whole = render_values(messages, false, extra);
  RLAIF_CHECK(whole.compare(0, out.prompt.size(), out.prompt) == 0,
              "chat template: the conversation without its last message (with the generation "
              "prompt) does not render as a prefix of the whole conversation, so it cannot be "
              "split into prompt and completion; prompt: \"",
              out.prompt, "\", whole: \"", whole, "\"");
  out.completion = whole.substr(out.prompt.size());
  return out;
}

std::string HfChatTemplate::render_values(const jinja::Value& messages, bool add_generation_prompt,
                                          const jinja::Value& extra) const {
  jinja::Dict context = special_tokens_;
  context.set("messages", messages);
  context.set("tools", jinja::Value::none());
  context.set("documents", jinja::Value::none());
  context.set("add_generation_prompt", jinja::Value(add_generation_prompt));
  context.set("raise_exception",
              function("raise_exception", [](const jinja::CallArgs& args) -> jinja::Value {
                throw ChatTemplateRaised(args.positional.empty() ? "" : args.positional[0].str());
              }));
  std::optional<std::time_t> fixed = fixed_time_;
  context.set("strftime_now", function("strftime_now", [fixed](const jinja::CallArgs& args) {
                RLAIF_CHECK(args.positional.size() == 1 && args.positional[0].is_string(),
                            "strftime_now() takes one format string");
                std::time_t now = fixed ? *fixed : std::time(nullptr);
                std::tm local{};
                localtime_r(&now, &local);
                char buf[512];
                size_t n =
                    std::strftime(buf, sizeof buf, args.positional[0].as_string().c_str(), &local);
                return jinja::Value(std::string(buf, n));
              }));
  for (const auto& [key, value] : extra.as_dict().entries) context.set(key, value);
  return template_.render(context, limits_);
}

std::string HfChatTemplate::render(const std::vector<ChatMessage>& messages,
                                   bool add_generation_prompt) const {
  jinja::List list;
  for (const ChatMessage& m : messages) {
    jinja::Dict message;
    message.set("role", jinja::Value(m.role));
    message.set("content", jinja::Value(m.content));
    list.emplace_back(std::move(message));
  }
  std::string json = jinja::value_to_json(jinja::Value(std::move(list)));
  return render(json, add_generation_prompt);
}

}  // namespace rlaif
