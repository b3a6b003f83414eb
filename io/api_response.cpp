#include "io/api_response.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

namespace rlaif {
namespace {

std::string one_line(std::string_view text, size_t max_chars) {
  std::string out;
  for (char c : text.substr(0, max_chars)) {
    out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  }
  if (text.size() > max_chars) out += "...";
  return out;
}

std::string_view view(const rapidjson::Value& s) {
  return {s.GetString(), s.GetStringLength()};
}

// A non-negative integer count from usage, or an error.
std::string read_count(const rapidjson::Value& usage, const char* key, int64_t& out) {
  auto it = usage.FindMember(key);
  if (it == usage.MemberEnd() || it->value.IsNull()) return "";
  if (!it->value.IsInt64() || it->value.GetInt64() < 0) {
    return std::string("usage.") + key + " is not a non-negative integer";
  }
  out = it->value.GetInt64();
  return "";
}

}  // namespace

std::string parse_completion_response(std::string_view body, bool chat, ParsedCompletion& out) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError()) {
    return std::string("invalid JSON at offset ") + std::to_string(doc.GetErrorOffset()) + " (" +
           rapidjson::GetParseError_En(doc.GetParseError()) + "): " + one_line(body, 200);
  }
  if (!doc.IsObject()) return "the response is not a JSON object";
  auto choices = doc.FindMember("choices");
  if (choices == doc.MemberEnd()) return "the response has no \"choices\"";
  if (!choices->value.IsArray()) return "\"choices\" is not an array";
  if (choices->value.Empty()) return "\"choices\" is empty";
  const rapidjson::Value& choice = choices->value[0];
  if (!choice.IsObject()) return "choices[0] is not an object";

  ParsedCompletion parsed;
  if (chat) {
    auto message = choice.FindMember("message");
    if (message == choice.MemberEnd() || !message->value.IsObject()) {
      return "choices[0].message is missing or not an object";
    }
    auto content = message->value.FindMember("content");
    if (content == message->value.MemberEnd() || !content->value.IsString()) {
      return "choices[0].message.content is missing or not a string";
    }
    parsed.text = view(content->value);
  } else {
    auto text = choice.FindMember("text");
    if (text == choice.MemberEnd() || !text->value.IsString()) {
      return "choices[0].text is missing or not a string";
    }
    parsed.text = view(text->value);
  }
  auto finish = choice.FindMember("finish_reason");
  if (finish == choice.MemberEnd()) return "choices[0].finish_reason is missing";
  if (finish->value.IsString()) {
    parsed.finish_reason = view(finish->value);
  } else if (!finish->value.IsNull()) {
    return "choices[0].finish_reason is neither a string nor null";
  }

  auto usage = doc.FindMember("usage");
  if (usage != doc.MemberEnd() && !usage->value.IsNull()) {
    if (!usage->value.IsObject()) return "\"usage\" is not an object";
    parsed.usage_reported = true;
    if (auto e = read_count(usage->value, "prompt_tokens", parsed.prompt_tokens); !e.empty()) {
      return e;
    }
    if (auto e = read_count(usage->value, "completion_tokens", parsed.completion_tokens);
        !e.empty()) {
      return e;
    }
  }
  out = std::move(parsed);
  return "";
}

std::string api_error_message(std::string_view body) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (!doc.HasParseError() && doc.IsObject()) {
    auto error = doc.FindMember("error");
    if (error != doc.MemberEnd()) {
      if (error->value.IsString()) return one_line(view(error->value), 1000);
      if (error->value.IsObject()) {
        auto message = error->value.FindMember("message");
        if (message != error->value.MemberEnd() && message->value.IsString()) {
          return one_line(view(message->value), 1000);
        }
      }
    }
    auto message = doc.FindMember("message");
    if (message != doc.MemberEnd() && message->value.IsString()) {
      return one_line(view(message->value), 1000);
    }
  }
  if (body.empty()) return "(empty body)";
  return one_line(body, 200);
}

}  // namespace rlaif
