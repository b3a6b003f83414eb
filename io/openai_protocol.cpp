#include "io/openai_protocol.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "io/json_depth.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;
using rapidjson::Value;

constexpr size_t kMaxStopStrings = 16;
constexpr const char* kTurnSeparator = "\n\n";

template <typename... Args>
ApiError bad_request(const std::string& param, const Args&... args) {
  return ApiError(400, Error::concat(args...), param);
}

void write_string(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void write_optional_string(JsonWriter& w, const std::string& s) {
  if (s.empty())
    w.Null();
  else
    write_string(w, s);
}

std::string json_string(const Value& v) {
  return std::string(v.GetString(), v.GetStringLength());
}

// The member `name` of `object`, or nullptr when it is missing or null (OpenAI's SDKs send null
// for "not set").
const Value* member(const Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

double number_in(const Value& object, const char* name, double lo, double hi, bool lo_open,
                 double fallback) {
  const Value* v = member(object, name);
  if (v == nullptr) return fallback;
  if (!v->IsNumber()) throw bad_request(name, "'", name, "' must be a number");
  double x = v->GetDouble();
  if (x > hi || x < lo || (lo_open && x == lo))
    throw bad_request(name, "'", name, "' is ", x, "; it must be in ", lo_open ? "(" : "[", lo,
                      ", ", hi, "]");
  return x;
}

std::optional<int64_t> integer(const Value& object, const char* name) {
  const Value* v = member(object, name);
  if (v == nullptr) return std::nullopt;
  if (!v->IsInt64()) throw bad_request(name, "'", name, "' must be an integer");
  return v->GetInt64();
}

bool boolean(const Value& object, const char* name) {
  const Value* v = member(object, name);
  if (v == nullptr) return false;
  if (!v->IsBool()) throw bad_request(name, "'", name, "' must be true or false");
  return v->GetBool();
}

// A message's content: a string, or (newer OpenAI clients) an array of {"type": "text", "text"}
// parts, joined. Null is allowed for assistant messages (they may carry only tool calls).
std::string message_content(const Value& message, const std::string& where, bool allow_null) {
  auto it = message.FindMember("content");
  if (it == message.MemberEnd()) throw bad_request(where + ".content", where, " has no content");
  const Value& c = it->value;
  if (c.IsNull() && allow_null) return "";
  if (c.IsString()) return json_string(c);
  if (!c.IsArray())
    throw bad_request(where + ".content", where, ".content must be a string or an array of parts");
  std::string text;
  for (rapidjson::SizeType i = 0; i < c.Size(); ++i) {
    const std::string at = where + ".content[" + std::to_string(i) + "]";
    const Value& part = c[i];
    const Value* type = part.IsObject() ? member(part, "type") : nullptr;
    const Value* t = part.IsObject() ? member(part, "text") : nullptr;
    if (type == nullptr || !type->IsString() || json_string(*type) != "text" || t == nullptr ||
        !t->IsString())
      throw bad_request(at, at,
                        " must be {\"type\": \"text\", \"text\": string} (only text is "
                        "supported)");
    text += json_string(*t);
  }
  return text;
}

std::vector<ChatMessage> parse_messages(const Value& doc) {
  const Value* m = member(doc, "messages");
  if (m == nullptr) throw bad_request("messages", "'messages' is required");
  if (!m->IsArray() || m->Empty())
    throw bad_request("messages", "'messages' must be a non-empty array");
  std::vector<ChatMessage> messages;
  for (rapidjson::SizeType i = 0; i < m->Size(); ++i) {
    const std::string where = "messages[" + std::to_string(i) + "]";
    const Value& msg = (*m)[i];
    if (!msg.IsObject()) throw bad_request(where, where, " must be an object");
    const Value* role = member(msg, "role");
    if (role == nullptr || !role->IsString())
      throw bad_request(where + ".role", where, ".role must be a string");
    ChatMessage out;
    out.role = json_string(*role);
    if (out.role == "developer") out.role = "system";  // OpenAI's newer name for system
    if (out.role != "system" && out.role != "user" && out.role != "assistant")
      throw bad_request(where + ".role", where, ".role is '", out.role,
                        "'; supported roles: system, developer, user, assistant");
    out.content = message_content(msg, where, out.role == "assistant");
    messages.push_back(std::move(out));
  }
  return messages;
}

std::string parse_prompt(const Value& doc) {
  const Value* p = member(doc, "prompt");
  if (p == nullptr) throw bad_request("prompt", "'prompt' is required");
  if (p->IsString()) return json_string(*p);
  if (p->IsArray() && p->Size() == 1 && (*p)[0].IsString()) return json_string((*p)[0]);
  throw bad_request("prompt", "'prompt' must be a string (or an array of exactly one string)");
}

std::vector<std::string> parse_stop(const Value& doc) {
  const Value* s = member(doc, "stop");
  std::vector<std::string> stop;
  if (s == nullptr) return stop;
  if (s->IsString()) {
    stop.push_back(json_string(*s));
  } else if (s->IsArray()) {
    for (const Value& item : s->GetArray()) {
      if (!item.IsString()) throw bad_request("stop", "'stop' must hold only strings");
      stop.push_back(json_string(item));
    }
  } else {
    throw bad_request("stop", "'stop' must be a string or an array of strings");
  }
  if (stop.size() > kMaxStopStrings)
    throw bad_request("stop", "'stop' has ", stop.size(), " strings; at most ", kMaxStopStrings);
  for (const std::string& x : stop)
    if (x.empty()) throw bad_request("stop", "'stop' holds an empty string");
  return stop;
}

// One event's chunk object up to its "choices" array, which the caller fills.
void begin_chunk(JsonWriter& w, Endpoint endpoint, const ResponseMeta& meta) {
  w.StartObject();
  w.Key("id");
  write_string(w, meta.id);
  w.Key("object");
  w.String(endpoint == Endpoint::chat ? "chat.completion.chunk" : "text_completion");
  w.Key("created");
  w.Int64(meta.created);
  w.Key("model");
  write_string(w, meta.model);
  w.Key("choices");
  w.StartArray();
}

// A streamed choice: for chat, `delta` holds `content` (and the role when `with_role`); for
// completions, `text`. finish_reason "" is written as null.
std::string chunk_event(Endpoint endpoint, const ResponseMeta& meta, const std::string* content,
                        bool with_role, const std::string& finish_reason) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  begin_chunk(w, endpoint, meta);
  w.StartObject();
  w.Key("index");
  w.Int(0);
  if (endpoint == Endpoint::chat) {
    w.Key("delta");
    w.StartObject();
    if (with_role) {
      w.Key("role");
      w.String("assistant");
    }
    if (content != nullptr) {
      w.Key("content");
      write_string(w, *content);
    }
    w.EndObject();
  } else {
    w.Key("text");
    write_string(w, content != nullptr ? *content : std::string());
    w.Key("logprobs");
    w.Null();
  }
  w.Key("finish_reason");
  write_optional_string(w, finish_reason);
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return "data: " + std::string(buffer.GetString(), buffer.GetSize()) + "\n\n";
}

void write_usage(JsonWriter& w, const ApiCompletion& c) {
  w.Key("usage");
  w.StartObject();
  w.Key("prompt_tokens");
  w.Int64(c.prompt_tokens);
  w.Key("completion_tokens");
  w.Int64(c.completion_tokens);
  w.Key("total_tokens");
  w.Int64(c.prompt_tokens + c.completion_tokens);
  w.EndObject();
}

void write_model(JsonWriter& w, const std::string& model, int64_t created) {
  w.StartObject();
  w.Key("id");
  write_string(w, model);
  w.Key("object");
  w.String("model");
  w.Key("created");
  w.Int64(created);
  w.Key("owned_by");
  w.String("rlaif");
  w.EndObject();
}

// Length of the longest common prefix of a and b, backed off so that it does not end inside a
// UTF-8 character of b.
size_t common_prefix(const std::string& a, const std::string& b) {
  size_t n = 0;
  const size_t limit = std::min(a.size(), b.size());
  while (n < limit && a[n] == b[n]) ++n;
  while (n > 0 && n < b.size() && (static_cast<unsigned char>(b[n]) & 0xC0) == 0x80) --n;
  return n;
}

}  // namespace

ApiError::ApiError(int status, const std::string& message, std::string param, std::string code)
    : std::runtime_error(message),
      status_(status),
      param_(std::move(param)),
      code_(std::move(code)) {}

std::string error_body(int status, const std::string& message, const std::string& param,
                       const std::string& code) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("message");
  write_string(w, message);
  w.Key("type");
  w.String(status == 429   ? "rate_limit_error"
           : status >= 500 ? "server_error"
                           : "invalid_request_error");
  w.Key("param");
  write_optional_string(w, param);
  w.Key("code");
  write_optional_string(w, code);
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string error_body(const ApiError& error) {
  return error_body(error.status(), error.what(), error.param(), error.code());
}

namespace {

// A model's own template renders the conversation; a last assistant message is a prefill the
// reply continues (after the generation prompt of the turns before it).
std::string render_with_jinja(const std::vector<ChatMessage>& messages, const ChatTemplate& chat) {
  if (messages.empty()) throw bad_request("messages", "'messages' holds no message");
  try {
    if (messages.back().role == "assistant") {
      std::vector<ChatMessage> before(messages.begin(), messages.end() - 1);
      return chat.render_prompt(before) + messages.back().content;
    }
    return chat.render_prompt(messages);
  } catch (const Error& e) {
    throw bad_request("messages", "the model's chat template refused the messages: ", e.what());
  }
}

}  // namespace

std::string render_chat(const std::vector<ChatMessage>& messages, const ChatTemplate& chat) {
  if (chat.is_jinja()) return render_with_jinja(messages, chat);
  std::string system;
  struct Turn {
    bool user;
    std::string text;
  };
  std::vector<Turn> turns;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") {
      system += (system.empty() ? "" : kTurnSeparator) + m.content;
      continue;
    }
    if (m.role != "user" && m.role != "assistant")
      throw bad_request("messages", "unknown role '", m.role, "'");
    const bool user = m.role == "user";
    if (!turns.empty() && turns.back().user == user)
      turns.back().text += kTurnSeparator + m.content;
    else
      turns.push_back({user, m.content});
  }
  if (turns.empty()) throw bad_request("messages", "'messages' holds no user message");
  if (!turns.front().user)
    throw bad_request("messages", "the first message after the system messages must be the user's");
  if (!system.empty()) turns.front().text = system + kTurnSeparator + turns.front().text;
  std::string prompt;
  for (size_t i = 0; i < turns.size(); ++i) {
    if (turns[i].user) {
      prompt += chat.apply(turns[i].text);
    } else {
      prompt += turns[i].text;
      if (i + 1 < turns.size()) prompt += kTurnSeparator;  // a last one is a prefill to continue
    }
  }
  return prompt;
}

ApiRequest parse_api_request(std::string_view body, Endpoint endpoint, const ChatTemplate& chat) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError())
    throw bad_request(
        "", "the body is not valid JSON: ", rapidjson::GetParseError_En(doc.GetParseError()),
        " (at byte ", doc.GetErrorOffset(), ")");
  if (!doc.IsObject()) throw bad_request("", "the body must be a JSON object");
  if (json_depth(doc) > kMaxJsonDepth)
    throw bad_request("", "the body nests deeper than ", kMaxJsonDepth, " levels");

  ApiRequest r;
  if (const Value* m = member(doc, "model")) {
    if (!m->IsString()) throw bad_request("model", "'model' must be a string");
    r.model = json_string(*m);
  }
  r.prompt =
      endpoint == Endpoint::chat ? render_chat(parse_messages(doc), chat) : parse_prompt(doc);
  r.temperature = static_cast<float>(number_in(doc, "temperature", 0, 2, false, 1.0));
  r.top_p = static_cast<float>(number_in(doc, "top_p", 0, 1, true, 1.0));
  r.max_tokens = integer(doc, "max_tokens");
  if (endpoint == Endpoint::chat && !r.max_tokens)
    if (auto m = integer(doc, "max_completion_tokens")) {
      if (*m < 1)
        throw bad_request("max_completion_tokens", "'max_completion_tokens' must be >= 1");
      r.max_tokens = m;
    }
  if (r.max_tokens && *r.max_tokens < 1)
    throw bad_request("max_tokens", "'max_tokens' is ", *r.max_tokens, "; it must be >= 1");
  if (const Value* s = member(doc, "seed")) {
    if (s->IsInt64())
      r.seed = static_cast<uint64_t>(s->GetInt64());
    else if (s->IsUint64())
      r.seed = s->GetUint64();
    else
      throw bad_request("seed", "'seed' must be an integer");
  }
  for (const char* name : {"n", "best_of"})
    if (auto n = integer(doc, name); n && *n != 1)
      throw bad_request(name, "'", name, "' is ", *n, "; this server returns one choice (1 only)");
  r.stop = parse_stop(doc);
  r.stream = boolean(doc, "stream");
  if (const Value* so = member(doc, "stream_options")) {
    if (!so->IsObject()) throw bad_request("stream_options", "'stream_options' must be an object");
    r.include_usage = boolean(*so, "include_usage");
  }
  if (const Value* lp = member(doc, "logprobs");
      lp != nullptr && !(lp->IsBool() && !lp->GetBool()) && !(lp->IsInt() && lp->GetInt() == 0))
    throw bad_request("logprobs", "'logprobs' is not supported by this server");
  if (boolean(doc, "echo")) throw bad_request("echo", "'echo' is not supported by this server");
  return r;
}

ApiCompletion finish_completion(const Tokenizer& tokenizer, const Generation& generation,
                                const std::vector<int32_t>& prompt, bool continue_prompt,
                                const std::vector<std::string>& stop, bool want_deltas) {
  ApiCompletion c;
  c.prompt_tokens = static_cast<int64_t>(prompt.size());
  c.completion_tokens = static_cast<int64_t>(generation.tokens.size());
  std::vector<int32_t> ids = generation.tokens;
  if (generation.stopped_at_eos && !ids.empty()) ids.pop_back();
  const std::string before = continue_prompt ? tokenizer.decode(prompt) : std::string();
  // The text of the first k generated tokens.
  auto decode_prefix = [&](size_t k) {
    auto end = ids.begin() + static_cast<long>(k);
    if (continue_prompt) {
      std::vector<int32_t> all = prompt;
      all.insert(all.end(), ids.begin(), end);
      std::string text = tokenizer.decode(all);
      if (text.compare(0, before.size(), before) == 0) return text.substr(before.size());
    }
    return tokenizer.decode(std::vector<int32_t>(ids.begin(), end));
  };
  const std::string full = decode_prefix(ids.size());
  size_t cut = std::string::npos, stop_end = 0;
  for (const std::string& s : stop) {
    size_t at = full.find(s);
    if (at < cut) {
      cut = at;
      stop_end = at + s.size();
    }
  }
  if (cut != std::string::npos) {
    c.text = full.substr(0, cut);
    // Tokens up to the one completing the stop string: a server that checked after every token
    // would have stopped there. Coverage only grows with k, so binary search.
    size_t lo = 1, hi = ids.size();
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (common_prefix(decode_prefix(mid), full) >= stop_end)
        hi = mid;
      else
        lo = mid + 1;
    }
    c.completion_tokens = static_cast<int64_t>(lo);
  } else {
    c.text = full;
  }
  c.finish_reason = cut != std::string::npos || generation.stopped_at_eos ? "stop" : "length";
  if (want_deltas) {
    size_t emitted = 0;
    for (size_t k = 1; k <= ids.size() && emitted < c.text.size(); ++k) {
      size_t upto = std::min(common_prefix(decode_prefix(k), c.text), c.text.size());
      if (upto > emitted) {
        c.deltas.push_back(c.text.substr(emitted, upto - emitted));
        emitted = upto;
      }
    }
    if (emitted < c.text.size()) c.deltas.push_back(c.text.substr(emitted));
  }
  return c;
}

std::string completion_body(Endpoint endpoint, const ResponseMeta& meta,
                            const ApiCompletion& completion) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("id");
  write_string(w, meta.id);
  w.Key("object");
  w.String(endpoint == Endpoint::chat ? "chat.completion" : "text_completion");
  w.Key("created");
  w.Int64(meta.created);
  w.Key("model");
  write_string(w, meta.model);
  w.Key("choices");
  w.StartArray();
  w.StartObject();
  w.Key("index");
  w.Int(0);
  if (endpoint == Endpoint::chat) {
    w.Key("message");
    w.StartObject();
    w.Key("role");
    w.String("assistant");
    w.Key("content");
    write_string(w, completion.text);
    w.EndObject();
  } else {
    w.Key("text");
    write_string(w, completion.text);
    w.Key("logprobs");
    w.Null();
  }
  w.Key("finish_reason");
  write_string(w, completion.finish_reason);
  w.EndObject();
  w.EndArray();
  write_usage(w, completion);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::vector<std::string> stream_opening(Endpoint endpoint, const ResponseMeta& meta) {
  const std::string empty;
  if (endpoint != Endpoint::chat) return {};
  return {chunk_event(endpoint, meta, &empty, true, "")};
}

std::string stream_piece(Endpoint endpoint, const ResponseMeta& meta, const std::string& text) {
  return chunk_event(endpoint, meta, &text, false, "");
}

std::vector<std::string> stream_closing(Endpoint endpoint, const ResponseMeta& meta,
                                        const ApiCompletion& completion, bool include_usage) {
  std::vector<std::string> events;
  const std::string empty;
  events.push_back(chunk_event(endpoint, meta, endpoint == Endpoint::chat ? nullptr : &empty, false,
                               completion.finish_reason));
  if (include_usage) {
    rapidjson::StringBuffer buffer;
    JsonWriter w(buffer);
    begin_chunk(w, endpoint, meta);
    w.EndArray();
    write_usage(w, completion);
    w.EndObject();
    events.push_back("data: " + std::string(buffer.GetString(), buffer.GetSize()) + "\n\n");
  }
  events.push_back("data: [DONE]\n\n");
  return events;
}

std::string stream_error(int status, const std::string& message, const std::string& code) {
  return "data: " + error_body(status, message, "", code) + "\n\n";
}

std::vector<std::string> stream_events(Endpoint endpoint, const ResponseMeta& meta,
                                       const ApiCompletion& completion, bool include_usage) {
  std::vector<std::string> events = stream_opening(endpoint, meta);
  for (const std::string& d : completion.deltas) events.push_back(stream_piece(endpoint, meta, d));
  for (std::string& e : stream_closing(endpoint, meta, completion, include_usage)) {
    events.push_back(std::move(e));
  }
  return events;
}

std::string models_body(const std::string& model, int64_t created) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("object");
  w.String("list");
  w.Key("data");
  w.StartArray();
  write_model(w, model, created);
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string model_body(const std::string& model, int64_t created) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  write_model(w, model, created);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace rlaif
