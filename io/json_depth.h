// How deeply a parsed JSON value nests, measured without recursion. Every JSON text rlaif reads is
// parsed iteratively (RapidJSON's kParseIterativeFlag), so nesting cannot overflow the stack while
// parsing; code that then walks a value recursively (the chat templates' values, writing a record
// back out) is safe because the readers of outside JSON refuse values nested deeper than
// kMaxJsonDepth: no real dataset, template context, API answer or request nests that deep.
#pragma once

#include <cstddef>

#include <rapidjson/document.h>

namespace rlaif {

inline constexpr size_t kMaxJsonDepth = 256;

// 0 for a scalar, 1 for an array or object of scalars, and so on.
size_t json_depth(const rapidjson::Value& value);

}  // namespace rlaif
