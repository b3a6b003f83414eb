// `rlaif tokenize`: a model directory's tokenizer and chat template over JSON Lines on stdin, one
// output line per input line, giving what Hugging Face transformers gives for the same directory.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "io/hf_chat_template.h"
#include "io/jsonl.h"
#include "io/tokenizer.h"
#include "runtime/error.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"

namespace rlaif::cli {
namespace {

using Json = rapidjson::Value;

bool blank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

void write_line(const Json& object) {
  const std::string text = to_json_line(object) + "\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
}

Json ids_array(const std::vector<int32_t>& ids, rapidjson::Document::AllocatorType& alloc) {
  Json out(rapidjson::kArrayType);
  out.Reserve(static_cast<rapidjson::SizeType>(ids.size()), alloc);
  for (int32_t id : ids) out.PushBack(id, alloc);
  return out;
}

std::vector<int32_t> read_ids(const Json& value, const std::string& where) {
  RLAIF_CHECK(value.IsArray(), where, ": \"ids\" must be an array of token ids");
  std::vector<int32_t> ids;
  for (const Json& id : value.GetArray()) {
    RLAIF_CHECK(id.IsInt(), where, ": \"ids\" must hold integers only");
    ids.push_back(id.GetInt());
  }
  return ids;
}

// Rejects keys other than `allowed`, so that a misspelt key is not silently ignored.
void check_keys(const Json& record, std::initializer_list<const char*> allowed,
                const std::string& where) {
  for (const auto& member : record.GetObject()) {
    const std::string key = member.name.GetString();
    bool known = false;
    for (const char* a : allowed) known = known || key == a;
    RLAIF_CHECK(known, where, ": unexpected key \"", key, "\"");
  }
}

}  // namespace

int tokenize_main(const std::vector<std::string>& args) {
  Flags flags(
      "tokenize",
      "Tokenize with a model directory's tokenizer (tokenizer.json, vocab.json + merges.txt or\n"
      "tokenizer.model) as Hugging Face transformers does. Reads JSON Lines on stdin and writes\n"
      "one line to stdout for each:\n"
      "  {\"text\": ...}          -> {\"ids\": [...]}, tokenizer.encode(text): special tokens\n"
      "                             added (BOS for Llama 3 and Gemma) unless --no-special\n"
      "  {\"messages\": [...], \"add_generation_prompt\": bool (default false)}\n"
      "                          -> {\"text\": ..., \"ids\": [...]}: the chat template's "
      "rendering\n"
      "                             and apply_chat_template(..., tokenize=True), i.e. the text\n"
      "                             encoded without adding special tokens\n"
      "  {\"ids\": [...]} with --decode -> {\"text\": ...}, tokenizer.decode(ids) (special tokens\n"
      "                             written out, as skip_special_tokens=False)\n"
      "A blank line is an error, as is anything else that fails: the message names the line\n"
      "(exit 1).");
  flags.option("model", "", "model directory", true)
      .flag("no-special", "encode {\"text\"} lines without adding special tokens")
      .flag("decode", "read {\"ids\": [...]} lines and write their text");
  if (!flags.parse(args)) return 0;
  const std::string dir = flags.str("model");
  const bool add_special = !flags.on("no-special");
  const bool decode = flags.on("decode");
  const Tokenizer tok = Tokenizer::load_dir(dir);
  std::optional<HfChatTemplate> chat;

  std::string line;
  for (int64_t number = 1; std::getline(std::cin, line); ++number) {
    const std::string where = "stdin line " + std::to_string(number);
    RLAIF_CHECK(!blank(line), where, ": blank line (every line must be a JSON object)");
    rapidjson::Document record;
    record.Parse<rapidjson::kParseIterativeFlag>(line.data(), line.size());
    RLAIF_CHECK(!record.HasParseError(), where, ": invalid JSON at column ",
                record.GetErrorOffset() + 1, ": ",
                rapidjson::GetParseError_En(record.GetParseError()));
    RLAIF_CHECK(record.IsObject(), where, ": expected a JSON object");
    rapidjson::Document out(rapidjson::kObjectType);
    auto& alloc = out.GetAllocator();
    try {
      if (decode) {
        check_keys(record, {"ids"}, where);
        RLAIF_CHECK(record.HasMember("ids"), where, ": --decode reads {\"ids\": [...]} lines");
        const std::string text = tok.decode(read_ids(record["ids"], where), false);
        out.AddMember(
            "text", Json(text.data(), static_cast<rapidjson::SizeType>(text.size()), alloc), alloc);
      } else if (record.HasMember("messages")) {
        check_keys(record, {"messages", "add_generation_prompt"}, where);
        bool generation_prompt = false;
        if (record.HasMember("add_generation_prompt")) {
          RLAIF_CHECK(record["add_generation_prompt"].IsBool(), where,
                      ": \"add_generation_prompt\" must be true or false");
          generation_prompt = record["add_generation_prompt"].GetBool();
        }
        RLAIF_CHECK(record["messages"].IsArray(), where, ": \"messages\" must be an array");
        if (!chat) {
          try {
            chat.emplace(HfChatTemplate::from_model_dir(dir));
          } catch (const Error& e) {
            throw Error("model directory '", dir, "' has no usable chat template (", e.what(), ")");
          }
        }
        const std::string text = chat->render(to_json_line(record["messages"]), generation_prompt);
        out.AddMember(
            "text", Json(text.data(), static_cast<rapidjson::SizeType>(text.size()), alloc), alloc);
        out.AddMember("ids", ids_array(tok.encode(text, false), alloc), alloc);
      } else {
        check_keys(record, {"text"}, where);
        RLAIF_CHECK(record.HasMember("text") && record["text"].IsString(), where,
                    ": expected {\"text\": \"...\"} or {\"messages\": [...]} (or --decode with "
                    "{\"ids\": [...]})");
        const std::string_view text(record["text"].GetString(), record["text"].GetStringLength());
        out.AddMember("ids", ids_array(tok.encode(text, add_special), alloc), alloc);
      }
    } catch (const Error& e) {
      const std::string message = e.what();
      if (message.rfind(where, 0) == 0) throw;
      throw Error(where, ": ", message);
    }
    write_line(out);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace rlaif::cli
