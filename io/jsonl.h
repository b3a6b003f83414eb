// JSON Lines: one JSON object per line (docs/DESIGN.md, Data formats). Reading names the file and
// line of any malformed record; writing appends one flushed line at a time, so a crash loses at
// most the line being written and a re-run can continue after the last complete one.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

namespace rlaif {

// Calls fn(object, line_number) for every non-blank line of `path` (1-based line numbers).
// Error "PATH:LINE: ..." for a line that is not a JSON object.
void read_jsonl(const std::string& path,
                const std::function<void(const rapidjson::Value&, int64_t)>& fn);
// The string field `key` of a record; Error "PATH:LINE: missing string field "key"" otherwise.
std::string jsonl_string(const rapidjson::Value& record, const char* key, const std::string& path,
                         int64_t line);
// Number of complete (newline-terminated) lines in `path`; 0 when it does not exist. A torn last
// line (a crash mid-write) is not counted, and truncate_to_complete_lines() removes it.
int64_t count_complete_lines(const std::string& path);
void truncate_to_complete_lines(const std::string& path);

// Appends JSON objects to a file, one line each, flushed and fsynced per line.
class JsonlWriter {
 public:
  // append = false truncates the file first.
  JsonlWriter(const std::string& path, bool append);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;

  void write(const rapidjson::Value& object);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

// Serialises a JSON value on one line.
std::string to_json_line(const rapidjson::Value& value);

}  // namespace rlaif
