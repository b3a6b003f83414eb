#include "io/datasets.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <sstream>

#include "io/chat_message.h"
#include "io/json_depth.h"
#include "io/jsonl.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

using Json = rapidjson::Value;
using Turn = ChatMessage;
using RecordFn = std::function<void(const Json&, const std::string& where)>;

// Calls fn for every record of a JSONL file or a JSON array file; `where` is "PATH:LINE" or
// "PATH[INDEX]" for error messages.
void for_each_record(const std::string& path, const RecordFn& fn) {
  std::ifstream in(path);
  RLAIF_CHECK(in.good(), "cannot open dataset ", path);
  char first = 0;
  while (in.get(first) && std::isspace(static_cast<unsigned char>(first))) {
  }
  if (first == '[') {
    in.seekg(0);
    std::stringstream buffer;
    buffer << in.rdbuf();
    std::string text = buffer.str();
    // As read_jsonl: a NUL byte would end the parser's text early.
    const size_t nul = text.find('\0');
    if (nul != std::string::npos) {
      const auto line =
          1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(nul), '\n');
      throw Error(path, ":", line, ": a NUL byte (binary data, not JSON text)");
    }
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(text.c_str(), text.size());
    if (doc.HasParseError()) {
      size_t offset = doc.GetErrorOffset(), line = 1;
      for (size_t i = 0; i < offset && i < text.size(); ++i) line += text[i] == '\n';
      throw Error(path, ":", line,
                  ": invalid JSON: ", rapidjson::GetParseError_En(doc.GetParseError()));
    }
    RLAIF_CHECK(json_depth(doc) <= kMaxJsonDepth, path, ": JSON nested deeper than ", kMaxJsonDepth,
                " levels");
    for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
      std::string where = path + "[" + std::to_string(i) + "]";
      RLAIF_CHECK(doc[i].IsObject(), where, ": each record must be a JSON object");
      fn(doc[i], where);
    }
    return;
  }
  read_jsonl(path, [&](const Json& record, int64_t line) {
    fn(record, path + ":" + std::to_string(line));
  });
}

bool has_string(const Json& r, const char* key) {
  auto it = r.FindMember(key);
  return it != r.MemberEnd() && it->value.IsString();
}

std::string get_string(const Json& r, const char* key, const std::string& where) {
  auto it = r.FindMember(key);
  RLAIF_CHECK(it != r.MemberEnd() && it->value.IsString(), where, ": missing string field \"", key,
              "\"");
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

// Reads [{"role", "content"}] or LLaMA-Factory's [{"from", "value"}] turns.
std::vector<Turn> read_turns(const Json& array, const std::string& where) {
  RLAIF_CHECK(array.IsArray(), where, ": conversation must be an array of turns");
  std::vector<Turn> turns;
  for (const auto& t : array.GetArray()) {
    RLAIF_CHECK(t.IsObject(), where, ": each turn must be an object");
    Turn turn;
    if (has_string(t, "role")) {
      turn.role = get_string(t, "role", where);
      turn.content = get_string(t, "content", where);
    } else {
      std::string from = get_string(t, "from", where);
      turn.content = get_string(t, "value", where);
      turn.role = from == "human" ? "user" : from == "gpt" ? "assistant" : from;
    }
    RLAIF_CHECK(turn.role == "system" || turn.role == "user" || turn.role == "assistant", where,
                ": unknown role \"", turn.role, "\" (expected system, user or assistant)");
    turns.push_back(std::move(turn));
  }
  return turns;
}

// Renders the turns before a final assistant reply as one prompt for the single-turn template
// (see the header).
std::string render_prompt(const std::vector<Turn>& turns, const std::string& where) {
  std::string prompt, system;
  bool expect_user = true;
  for (const Turn& t : turns) {
    if (t.role == "system") {
      system += t.content + "\n\n";
      continue;
    }
    RLAIF_CHECK((t.role == "user") == expect_user, where,
                ": turns must alternate user and assistant");
    if (t.role == "user") {
      prompt += (prompt.empty() ? "" : "\n\nHuman: ") + t.content;
    } else {
      prompt += "\n\nAssistant: " + t.content;
    }
    expect_user = !expect_user;
  }
  RLAIF_CHECK(!expect_user, where, ": the conversation must end with a user turn before the reply");
  return system + prompt;
}

// An SFT example from a conversation that ends with the assistant's reply.
SftExample sft_example(std::vector<Turn> turns, const std::string& where) {
  RLAIF_CHECK(!turns.empty() && turns.back().role == "assistant", where,
              ": the conversation must end with an assistant turn");
  SftExample e;
  e.completion = turns.back().content;
  e.messages = turns;
  turns.pop_back();
  e.prompt = render_prompt(turns, where);
  return e;
}

// Alpaca's prompt: the instruction, then the input (when not empty) after a blank line. With
// LLaMA-Factory's optional "system" and "history" ([[instruction, response], ...]: earlier
// turns), those come first, rendered like any other conversation.
std::vector<Turn> alpaca_turns(const Json& r, const std::string& where) {
  std::string instruction = get_string(r, "instruction", where);
  if (has_string(r, "input") && r["input"].GetStringLength() > 0) {
    instruction += "\n\n" + get_string(r, "input", where);
  }
  std::vector<Turn> turns;
  if (has_string(r, "system") && r["system"].GetStringLength() > 0) {
    turns.push_back({"system", get_string(r, "system", where)});
  }
  if (r.HasMember("history")) {
    const Json& history = r["history"];
    RLAIF_CHECK(history.IsArray(), where,
                ": \"history\" must be a list of [instruction, response]");
    for (const auto& pair : history.GetArray()) {
      RLAIF_CHECK(pair.IsArray() && pair.Size() == 2 && pair[0].IsString() && pair[1].IsString(),
                  where, ": each \"history\" entry must be [instruction, response] strings");
      turns.push_back({"user", std::string(pair[0].GetString(), pair[0].GetStringLength())});
      turns.push_back({"assistant", std::string(pair[1].GetString(), pair[1].GetStringLength())});
    }
  }
  turns.push_back({"user", instruction});
  render_prompt(turns, where);  // checks the turns alternate
  return turns;
}

// TRL's conversational prompt-completion form: "prompt" a list of turns ending with the user's,
// "completion" (or "chosen"/"rejected") a list holding the assistant's reply. The whole
// conversation is the concatenation.
std::vector<Turn> joined_turns(const Json& prompt, const Json& reply, const std::string& where) {
  std::vector<Turn> turns = read_turns(prompt, where);
  for (Turn& t : read_turns(reply, where)) turns.push_back(std::move(t));
  return turns;
}

bool same_turns(const std::vector<Turn>& a, const std::vector<Turn>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].role != b[i].role || a[i].content != b[i].content) return false;
  }
  return true;
}

std::string reply_text(const Json& v, const std::string& where, const char* key) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsObject()) return get_string(v, "value", where + " \"" + key + "\"");
  throw Error(where, ": \"", key,
              "\" must be a string, a {\"from\", \"value\"} turn or a list of turns");
}

}  // namespace

std::vector<SftExample> load_sft_examples(const std::string& path) {
  std::vector<SftExample> out;
  for_each_record(path, [&](const Json& r, const std::string& where) {
    if (has_string(r, "prompt") && has_string(r, "completion")) {
      out.push_back(sft_example({{"user", get_string(r, "prompt", where)},
                                 {"assistant", get_string(r, "completion", where)}},
                                where));
    } else if (r.HasMember("prompt") && r["prompt"].IsArray() && r.HasMember("completion")) {
      out.push_back(sft_example(joined_turns(r["prompt"], r["completion"], where), where));
    } else if (r.HasMember("messages")) {
      out.push_back(sft_example(read_turns(r["messages"], where), where));
    } else if (has_string(r, "instruction") && has_string(r, "output")) {
      std::vector<Turn> turns = alpaca_turns(r, where);
      turns.push_back({"assistant", get_string(r, "output", where)});
      out.push_back(sft_example(std::move(turns), where));
    } else {
      throw Error(where,
                  ": not an SFT record: expected \"prompt\" + \"completion\", \"messages\", "
                  "or Alpaca's \"instruction\" + \"output\"");
    }
  });
  RLAIF_CHECK(!out.empty(), path, ": no examples");
  return out;
}

std::vector<LabeledCompletion> load_labeled_completions(const std::string& path) {
  std::vector<LabeledCompletion> out;
  for_each_record(path, [&](const Json& r, const std::string& where) {
    auto label = r.FindMember("label");
    RLAIF_CHECK(label != r.MemberEnd(), where,
                ": an unpaired record needs \"label\": true (desirable) or false");
    RLAIF_CHECK(label->value.IsBool(), where, ": \"label\" must be true or false");
    SftExample e;
    if (has_string(r, "prompt") && has_string(r, "completion")) {
      e = sft_example({{"user", get_string(r, "prompt", where)},
                       {"assistant", get_string(r, "completion", where)}},
                      where);
    } else if (r.HasMember("prompt") && r["prompt"].IsArray() && r.HasMember("completion")) {
      e = sft_example(joined_turns(r["prompt"], r["completion"], where), where);
    } else {
      throw Error(where,
                  ": an unpaired record needs \"prompt\" and \"completion\" (texts, or lists "
                  "of turns)");
    }
    LabeledCompletion c;
    c.completion = std::move(e.completion);
    e.messages.pop_back();
    c.prompt = std::move(e.prompt);
    c.prompt_messages = std::move(e.messages);
    c.desirable = label->value.GetBool();
    out.push_back(std::move(c));
  });
  RLAIF_CHECK(!out.empty(), path, ": no examples");
  return out;
}

std::vector<LabeledCompletion> unpair_preferences(const std::vector<PreferencePair>& pairs) {
  std::vector<LabeledCompletion> out;
  out.reserve(2 * pairs.size());
  for (bool desirable : {true, false}) {
    for (const PreferencePair& p : pairs) {
      out.push_back({p.prompt, desirable ? p.chosen : p.rejected, desirable, p.prompt_messages});
    }
  }
  return out;
}

std::vector<PreferencePair> load_preferences(const std::string& path,
                                             const std::string& margin_key) {
  std::vector<PreferencePair> out;
  for_each_record(path, [&](const Json& r, const std::string& where) {
    RLAIF_CHECK(r.HasMember("chosen") && r.HasMember("rejected"), where,
                ": a preference record needs \"chosen\" and \"rejected\"");
    PreferencePair p;
    if (r["chosen"].IsArray()) {
      // TRL conversational: both sides hold the whole conversation (implicit prompt), or only the
      // reply after a "prompt" list of turns (explicit prompt); the prompt must be shared.
      const bool explicit_prompt = r.HasMember("prompt") && r["prompt"].IsArray();
      auto conversation = [&](const char* side) {
        return explicit_prompt ? joined_turns(r["prompt"], r[side], where)
                               : read_turns(r[side], where);
      };
      SftExample chosen = sft_example(conversation("chosen"), where);
      SftExample rejected = sft_example(conversation("rejected"), where);
      chosen.messages.pop_back();
      rejected.messages.pop_back();
      RLAIF_CHECK(
          chosen.prompt == rejected.prompt && same_turns(chosen.messages, rejected.messages), where,
          ": chosen and rejected conversations differ before the reply");
      p.prompt = chosen.prompt;
      p.prompt_messages = std::move(chosen.messages);
      p.chosen = chosen.completion;
      p.rejected = rejected.completion;
    } else {
      if (has_string(r, "prompt")) {
        p.prompt = get_string(r, "prompt", where);
        p.prompt_messages = {{"user", p.prompt}};
      } else if (r.HasMember("conversations")) {
        p.prompt_messages = read_turns(r["conversations"], where);
        p.prompt = render_prompt(p.prompt_messages, where);
      } else {
        throw Error(where, ": a preference record needs \"prompt\" or \"conversations\"");
      }
      p.chosen = reply_text(r["chosen"], where, "chosen");
      p.rejected = reply_text(r["rejected"], where, "rejected");
    }
    if (!margin_key.empty()) {
      auto it = r.FindMember(margin_key.c_str());
      RLAIF_CHECK(it != r.MemberEnd() && it->value.IsNumber(), where, ": missing number field \"",
                  margin_key, "\" (the margin key)");
      p.margin = it->value.GetDouble();
    }
    out.push_back(std::move(p));
  });
  RLAIF_CHECK(!out.empty(), path, ": no preference pairs");
  return out;
}

bool is_preference_file(const std::string& path) {
  bool preference = false, first = true;
  // Reads every record (for_each_record cannot stop early) but inspects only the first.
  for_each_record(path, [&](const Json& r, const std::string&) {
    if (first) preference = r.HasMember("chosen") && r.HasMember("rejected");
    first = false;
  });
  return preference;
}

std::vector<Conversation> load_prompt_conversations(const std::string& path) {
  std::vector<Conversation> out;
  for_each_record(path, [&](const Json& r, const std::string& where) {
    if (has_string(r, "prompt")) {
      out.push_back({{"user", get_string(r, "prompt", where)}});
    } else if (r.HasMember("prompt") && r["prompt"].IsArray()) {
      out.push_back(read_turns(r["prompt"], where));
      render_prompt(out.back(), where);  // checks the turns alternate and end with the user's
    } else if (has_string(r, "instruction")) {
      out.push_back(alpaca_turns(r, where));
    } else {
      throw Error(where, ": missing string field \"prompt\"");
    }
  });
  RLAIF_CHECK(!out.empty(), path, ": no prompts");
  return out;
}

std::vector<PromptRecord> load_prompt_records(const std::string& path) {
  std::vector<PromptRecord> out;
  const std::vector<Conversation> prompts = load_prompt_conversations(path);
  for_each_record(path, [&](const Json& r, const std::string& where) {
    PromptRecord record;
    record.prompt = prompt_text(prompts[out.size()]);
    record.where = where;
    for (auto it = r.MemberBegin(); it != r.MemberEnd(); ++it) {
      std::string name(it->name.GetString(), it->name.GetStringLength());
      if (name != "prompt") record.columns.insert_or_assign(name, to_json_line(it->value));
    }
    out.push_back(std::move(record));
  });
  return out;
}

std::vector<std::string> load_prompts(const std::string& path) {
  std::vector<std::string> out;
  for (const Conversation& c : load_prompt_conversations(path)) out.push_back(prompt_text(c));
  return out;
}

std::string prompt_text(const Conversation& prompt) {
  if (prompt.size() == 1 && prompt[0].role == "user") return prompt[0].content;
  return render_prompt(prompt, "prompt");
}

}  // namespace rlaif
