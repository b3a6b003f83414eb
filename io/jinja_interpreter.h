// Renders a parsed template (io/jinja_ast.h) against a context of variables, with jinja2's
// run-time rules:
//   - scopes: {% set %} writes the innermost scope; each for-loop iteration and each macro call
//     opens a fresh scope, so assignments inside a loop body are gone after the iteration (why
//     templates use namespace()); if-blocks open none;
//   - `loop` inside a for: index, index0, revindex, revindex0, first, last, length, previtem,
//     nextitem, depth, depth0 and cycle(...); with "for x in xs if c", the filtered items;
//   - Undefined: a missing variable, key or attribute prints as "", is false, iterates as
//     empty and passes `is defined` as false; arithmetic, attribute access, subscripts and calls
//     on it throw Error ("'name' is undefined"), as jinja2's default Undefined does;
//   - the built-in globals range(), namespace(...) and dict(...).
// Errors name the template line and the construct at fault.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "io/jinja_ast.h"
#include "io/jinja_value.h"

namespace rlaif::jinja {

// What one render may do at most. A template from a downloaded model renders a conversation:
// the defaults are far above any real chat template's work and stop a hostile one (loops within
// loops, output that doubles) with an error naming its line, instead of a hang or an exhausted
// memory. (Recursion is bounded separately: macros 200 calls deep, nesting 256 levels.)
struct RenderLimits {
  int64_t max_iterations = 10'000'000;         // for-loop iterations, all loops together
  size_t max_output_bytes = size_t{64} << 20;  // the rendered text, and any block's
};

// `context` holds the template's variables (and callables such as raise_exception).
std::string render_body(const Body& body, const Dict& context,
                        const RenderLimits& limits = RenderLimits{});

}  // namespace rlaif::jinja
