#include "io/request_cache.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <filesystem>
#include <fstream>

#include "io/jsonl.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

ParsedCompletion parse_entry(const rapidjson::Value& doc, const std::string& where,
                             std::string& key) {
  RLAIF_CHECK(doc.IsObject(), where, ": a cache entry must be a JSON object");
  auto k = doc.FindMember("key");
  RLAIF_CHECK(k != doc.MemberEnd() && k->value.IsString() && k->value.GetStringLength() > 0, where,
              ": missing string field \"key\"");
  key.assign(k->value.GetString(), k->value.GetStringLength());
  auto r = doc.FindMember("response");
  RLAIF_CHECK(r != doc.MemberEnd() && r->value.IsObject(), where,
              ": missing object field \"response\"");
  const rapidjson::Value& response = r->value;
  ParsedCompletion out;
  for (auto [name, field] : {std::pair{"text", &out.text}, {"finish_reason", &out.finish_reason}}) {
    auto it = response.FindMember(name);
    RLAIF_CHECK(it != response.MemberEnd() && it->value.IsString(), where,
                ": missing string field \"response.", name, "\"");
    field->assign(it->value.GetString(), it->value.GetStringLength());
  }
  for (auto [name, field] : {std::pair{"prompt_tokens", &out.prompt_tokens},
                             {"completion_tokens", &out.completion_tokens}}) {
    auto it = response.FindMember(name);
    RLAIF_CHECK(it != response.MemberEnd() && it->value.IsInt64() && it->value.GetInt64() >= 0,
                where, ": missing non-negative integer field \"response.", name, "\"");
    *field = it->value.GetInt64();
  }
  return out;
}

}  // namespace

RequestCache::RequestCache(std::string path) : path_(std::move(path)) {
  if (path_.empty()) return;
  load();
  writer_ = std::make_unique<JsonlWriter>(path_, /*append=*/true);
}

RequestCache::~RequestCache() = default;

void RequestCache::load() {
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) return;
  std::ifstream in(path_, std::ios::binary);
  RLAIF_CHECK(in.good(), "cannot read the request cache ", path_);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  RLAIF_CHECK(!in.bad(), "cannot read the request cache ", path_);

  size_t start = 0;
  int64_t line_number = 0;
  for (size_t end; (end = data.find('\n', start)) != std::string::npos; start = end + 1) {
    ++line_number;
    std::string_view line(data.data() + start, end - start);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    std::string where = path_ + ":" + std::to_string(line_number);
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(line.data(), line.size());
    RLAIF_CHECK(!doc.HasParseError(), where, ": invalid JSON in the request cache at column ",
                doc.GetErrorOffset() + 1, ": ", rapidjson::GetParseError_En(doc.GetParseError()),
                " (delete the line, or the file, to ask for those responses again)");
    std::string key;
    ParsedCompletion response = parse_entry(doc, where, key);
    entries_.insert_or_assign(std::move(key), std::move(response));
  }
  // The rest, when there is any, is a line whose write was cut short: drop it so the next append
  // starts on a line of its own.
  if (start < data.size()) {
    std::filesystem::resize_file(path_, start, ec);
    RLAIF_CHECK(!ec, "cannot drop the torn last line of the request cache ", path_, ": ",
                ec.message());
  }
}

const ParsedCompletion* RequestCache::find(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

void RequestCache::append(const std::string& key, const ParsedCompletion& response) {
  if (writer_) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    rapidjson::Value r(rapidjson::kObjectType);
    r.AddMember("text", rapidjson::Value(response.text.data(), response.text.size(), a), a);
    r.AddMember("finish_reason",
                rapidjson::Value(response.finish_reason.data(), response.finish_reason.size(), a),
                a);
    r.AddMember("prompt_tokens", response.prompt_tokens, a);
    r.AddMember("completion_tokens", response.completion_tokens, a);
    doc.AddMember("key", rapidjson::Value(key.data(), key.size(), a), a);
    doc.AddMember("response", r, a);
    writer_->write(doc);
  }
  entries_.insert_or_assign(key, response);
}

}  // namespace rlaif
