// JSON in and out of template values. In: JSON text (messages, tools, extra context) becomes
// Values with the Python types json.loads gives (integers stay int, other numbers float). Out:
// Python's json.dumps as Hugging Face's `tojson` filter calls it — ensure_ascii=False (non-ASCII
// characters are written as they are), keys in insertion order unless sorted, separators
// ", " and ": " on one line, or "," and ": " with newlines and `indent` spaces a level.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "io/jinja_value.h"

namespace rlaif::jinja {

// Parses JSON text; throws Error naming `what` and the offset of a syntax error.
Value value_from_json_text(std::string_view json, const std::string& what);

// The options of Python's json.dumps that Hugging Face's tojson passes on.
struct JsonFormat {
  // One level of indentation; nullopt writes everything on one line (indent=None).
  std::optional<std::string> indent;
  // Between items: ", " on one line and "," when indented unless set (separators=).
  std::optional<std::string> item_separator;
  std::string key_separator = ": ";
  bool sort_keys = false;
  // Non-ASCII characters as \uXXXX escapes instead of as they are.
  bool ensure_ascii = false;
};

// json.dumps(value, ...) with `format`. Throws Error for values JSON has no form for (Undefined,
// functions, namespaces).
std::string value_to_json(const Value& value, const JsonFormat& format);
// One line, ensure_ascii=False: what tojson prints without arguments.
std::string value_to_json(const Value& value);

}  // namespace rlaif::jinja
