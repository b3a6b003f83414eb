#include "io/jsonl.h"

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "io/crash_point.h"
#include "io/json_depth.h"
#include "io/json_exact.h"
#include "runtime/error.h"

namespace rlaif {

void read_jsonl(const std::string& path,
                const std::function<void(const rapidjson::Value&, int64_t)>& fn) {
  std::ifstream in(path);
  RLAIF_CHECK(in.good(), "cannot open ", path);
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    // JSON text holds no NUL byte; the parser would take one for the end of the text, ignoring
    // what follows or blaming a missing quote.
    const size_t nul = line.find('\0');
    RLAIF_CHECK(nul == std::string::npos, path, ":", number, ": a NUL byte at column ", nul + 1,
                " (binary data, not JSON text)");
    rapidjson::Document doc;
    // Exact numbers: they read back to the doubles that were written (a resumed run rewrites
    // the kept lines of its metrics log, which must not change them).
    const rapidjson::ParseResult parsed = parse_json_exact(doc, line);
    RLAIF_CHECK(!parsed.IsError(), path, ":", number, ": invalid JSON at column ",
                parsed.Offset() + 1, ": ", rapidjson::GetParseError_En(parsed.Code()));
    RLAIF_CHECK(doc.IsObject(), path, ":", number, ": each line must be a JSON object");
    RLAIF_CHECK(json_depth(doc) <= kMaxJsonDepth, path, ":", number, ": JSON nested deeper than ",
                kMaxJsonDepth, " levels");
    fn(doc, number);
  }
}

std::string jsonl_string(const rapidjson::Value& record, const char* key, const std::string& path,
                         int64_t line) {
  auto it = record.FindMember(key);
  RLAIF_CHECK(it != record.MemberEnd() && it->value.IsString(), path, ":", line,
              ": missing string field \"", key, "\"");
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

int64_t count_complete_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) return 0;
  int64_t lines = 0;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) lines += buf[i] == '\n';
  }
  return lines;
}

void truncate_to_complete_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) return;
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t keep = data.rfind('\n');
  keep = keep == std::string::npos ? 0 : keep + 1;
  if (keep != data.size()) std::filesystem::resize_file(path, keep);
}

JsonlWriter::JsonlWriter(const std::string& path, bool append) : path_(path) {
  file_ = std::fopen(path.c_str(), append ? "ab" : "wb");
  RLAIF_CHECK(file_ != nullptr, "cannot open ", path, " for writing");
}

JsonlWriter::~JsonlWriter() {
  if (file_) std::fclose(file_);
}

std::string to_json_line(const rapidjson::Value& value) {
  RLAIF_CHECK(json_depth(value) <= kMaxJsonDepth, "cannot write a JSON value nested deeper than ",
              kMaxJsonDepth, " levels");
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

void JsonlWriter::write(const rapidjson::Value& object) {
  std::string line = to_json_line(object) + "\n";
  crash_point();
  RLAIF_CHECK(std::fwrite(line.data(), 1, line.size(), file_) == line.size() &&
                  std::fflush(file_) == 0 && fsync(fileno(file_)) == 0,
              "write failed on ", path_, " (disk full?)");
}

}  // namespace rlaif
