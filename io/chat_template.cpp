#include "io/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "io/hf_chat_template.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

// The [begin, end) span of one reply in a rendering, and whether it is trained.
struct Span {
  size_t begin, end;
  bool trained;
};

// Cuts `text` into segments at the spans (ascending, disjoint). Every reply is its own segment,
// trained or not, so that a conversation is encoded the same way whichever replies are trained.
ChatTemplate::Sequence cut(const std::string& text, const std::vector<Span>& spans) {
  ChatTemplate::Sequence out;
  size_t at = 0;
  for (const Span& s : spans) {
    if (s.begin > at) out.push_back({text.substr(at, s.begin - at), false});
    out.push_back({text.substr(s.begin, s.end - s.begin), s.trained});
    at = s.end;
  }
  if (at < text.size()) out.push_back({text.substr(at), false});
  return out;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

std::string escaped(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\\')
      out += "\\\\";
    else
      out += c;
  }
  return out;
}

// The turns of a single-slot conversation: system turns gathered first, then user and
// assistant turns that must alternate, starting with the user's.
struct SlotTurns {
  std::string system;  // each system turn followed by a blank line
  std::vector<const ChatMessage*> turns;
};

SlotTurns slot_turns(const Conversation& conversation) {
  SlotTurns out;
  for (const ChatMessage& m : conversation) {
    if (m.role == "system") {
      out.system += m.content + "\n\n";
      continue;
    }
    RLAIF_CHECK(m.role == "user" || m.role == "assistant", "chat template: unknown role \"", m.role,
                "\" (expected system, user or assistant)");
    const bool expect_user = out.turns.size() % 2 == 0;
    RLAIF_CHECK((m.role == "user") == expect_user,
                "chat template: turns must alternate user and assistant, starting with the user");
    out.turns.push_back(&m);
  }
  return out;
}

}  // namespace

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

ChatTemplate::ChatTemplate(std::shared_ptr<const HfChatTemplate> jinja, std::string origin)
    : jinja_(std::move(jinja)), origin_(std::move(origin)) {
  RLAIF_CHECK(jinja_ != nullptr, "chat template: no Jinja template given");
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

ChatTemplate ChatTemplate::for_model(const std::string& model_dir, const std::string& flag) {
  namespace fs = std::filesystem;
  const fs::path config = fs::path(model_dir) / "tokenizer_config.json";
  auto read = [](const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    RLAIF_CHECK(in, "chat template: cannot read ", path.string());
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  };
  if (!flag.empty()) {
    std::error_code ec;
    if (fs::is_regular_file(flag, ec)) {
      const std::string tokens = fs::exists(config) ? read(config) : "{}";
      return ChatTemplate(std::make_shared<const HfChatTemplate>(read(flag), tokens), flag);
    }
    return from_escaped(flag);
  }
  if (HfChatTemplate::dir_has_template(model_dir)) {
    const fs::path jinja_file = fs::path(model_dir) / "chat_template.jinja";
    return ChatTemplate(
        std::make_shared<const HfChatTemplate>(HfChatTemplate::from_model_dir(model_dir)),
        fs::exists(jinja_file) ? jinja_file.string() : config.string());
  }
  return ChatTemplate();
}

std::string ChatTemplate::describe() const {
  if (jinja_) return "the chat template of " + origin_;
  std::string out = "\"";
  out += escaped(text_);
  out += '"';
  return out;
}

const std::string& ChatTemplate::text() const {
  RLAIF_CHECK(!jinja_, "chat template: ", origin_, " is a Jinja template, not a {prompt} text");
  return text_;
}

std::string ChatTemplate::apply(std::string_view prompt) const {
  if (jinja_) return jinja_->render({{"user", std::string(prompt)}}, true);
  std::string out;
  out.reserve(before_.size() + prompt.size() + after_.size());
  out.append(before_).append(prompt).append(after_);
  return out;
}

std::string ChatTemplate::render_prompt(const Conversation& conversation) const {
  if (jinja_) return jinja_->render(conversation, true);
  SlotTurns s = slot_turns(conversation);
  RLAIF_CHECK(!s.turns.empty() && s.turns.size() % 2 == 1,
              "chat template: a prompt must end with the user's turn");
  std::string inner = s.system;
  for (size_t k = 0; k < s.turns.size(); ++k) {
    if (k > 0) inner += k % 2 == 1 ? "\n\nAssistant: " : "\n\nHuman: ";
    inner += s.turns[k]->content;
  }
  return apply(inner);
}

ChatTemplate::TrainingText ChatTemplate::training_text(const Conversation& conversation,
                                                       bool last_reply_only) const {
  RLAIF_CHECK(!conversation.empty() && conversation.back().role == "assistant",
              "chat template: a training conversation must end with the assistant's reply");
  return jinja_ ? jinja_training_text(conversation, last_reply_only)
                : single_slot_training_text(conversation, last_reply_only);
}

ChatTemplate::TrainingText ChatTemplate::single_slot_training_text(const Conversation& conversation,
                                                                   bool last_reply_only) const {
  SlotTurns s = slot_turns(conversation);
  std::string text = before_ + s.system;
  std::vector<Span> spans;
  for (size_t k = 0; k + 1 < s.turns.size(); ++k) {
    const bool user = k % 2 == 0;
    if (k > 0) text += user ? "\n\nHuman: " : "\n\nAssistant: ";
    if (!user) {
      spans.push_back({text.size(), text.size() + s.turns[k]->content.size(), !last_reply_only});
    }
    text += s.turns[k]->content;
  }
  text += after_;
  spans.push_back({text.size(), text.size() + s.turns.back()->content.size(), true});
  text += s.turns.back()->content;
  return {{cut(text, spans)}, false};
}

ChatTemplate::TrainingText ChatTemplate::jinja_training_text(const Conversation& conversation,
                                                             bool last_reply_only) const {
  const std::string whole = jinja_->render(conversation, false);
  std::vector<size_t> replies;
  for (size_t i = 0; i < conversation.size(); ++i) {
    if (conversation[i].role == "assistant") replies.push_back(i);
  }
  // Per reply: its prompt (the turns before it, with the generation prompt) and the
  // conversation cut after it.
  struct Cut {
    std::string prompt, through;
    std::string problem;  // why the reply cannot be told from its prompt ("" when it can)
  };
  std::vector<Cut> cuts;
  bool consistent = true;
  size_t previous_end = 0;
  for (size_t i : replies) {
    const bool last = i + 1 == conversation.size();
    Conversation before(conversation.begin(), conversation.begin() + static_cast<long>(i));
    Conversation through(conversation.begin(), conversation.begin() + static_cast<long>(i) + 1);
    Cut c;
    try {
      c.prompt = jinja_->render(before, true);
      c.through = last ? whole : jinja_->render(through, false);
      if (!starts_with(c.through, c.prompt)) {
        c.problem = Error::concat(
            "the turns before it (with the generation prompt) do not render "
            "as a prefix of the conversation through it; prompt: \"",
            c.prompt, "\", conversation: \"", c.through, "\"");
      }
    } catch (const Error& e) {
      if (last) throw;  // the conversation itself cannot be rendered
      c.problem = e.what();
    }
    RLAIF_CHECK(!last || c.problem.empty(), "chat template: the last reply (turn ", i + 1,
                ") cannot be told from its prompt: ", c.problem);
    consistent = consistent && c.problem.empty() && starts_with(whole, c.through) &&
                 c.prompt.size() >= previous_end;
    previous_end = c.through.size();
    cuts.push_back(std::move(c));
  }
  TrainingText out;
  if (consistent) {
    std::vector<Span> spans;
    for (size_t k = 0; k < cuts.size(); ++k) {
      const bool trained = !last_reply_only || k + 1 == cuts.size();
      spans.push_back({cuts[k].prompt.size(), cuts[k].through.size(), trained});
    }
    out.sequences.push_back(cut(whole, spans));
    return out;
  }
  const Cut& last = cuts.back();
  if (last_reply_only) {
    out.sequences.push_back(
        {{last.prompt, false}, {last.through.substr(last.prompt.size()), true}});
    return out;
  }
  out.one_per_reply = true;
  for (size_t k = 0; k < cuts.size(); ++k) {
    const Cut& c = cuts[k];
    RLAIF_CHECK(c.problem.empty(), "chat template: reply ", k + 1, " (turn ", replies[k] + 1,
                ") cannot be told from its prompt (--last-turn-only trains the last reply "
                "only): ",
                c.problem);
    out.sequences.push_back({{c.prompt, false}, {c.through.substr(c.prompt.size()), true}});
  }
  return out;
}

}  // namespace rlaif
