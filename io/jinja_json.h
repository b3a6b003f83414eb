// JSON in and out of template values. In: JSON text (messages, tools, extra context) becomes
// Values with the Python types json.loads gives (integers stay int, other numbers float). Out:
// Python's json.dumps as Hugging Face's `tojson` filter calls it — ensure_ascii=False (non-ASCII
// characters are written as they are), keys in insertion order unless sorted, separators
// ", " and ": " on one line, or "," and ": " with newlines and `indent` spaces a level.
#pragma once

#include <string>
#include <string_view>

#include "io/jinja_value.h"

namespace rlaif::jinja {

// Parses JSON text; throws Error naming `what` and the offset of a syntax error.
Value value_from_json_text(std::string_view json, const std::string& what);

// json.dumps(value, ensure_ascii=False, indent=indent or None, sort_keys=sort_keys). `indent` < 0
// writes one line; `indent_text` (when not empty) replaces the spaces of one level. Throws Error
// for values JSON has no form for (Undefined, functions).
std::string value_to_json(const Value& value, int indent, bool sort_keys,
                          const std::string& indent_text = "");

}  // namespace rlaif::jinja
