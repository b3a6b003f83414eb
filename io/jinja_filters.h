// jinja2's filters (x | name(args)) and tests (x is name(args)) that chat templates use, with
// jinja2's semantics, including its less obvious defaults: `unique` and `sort` compare strings
// case-insensitively, `int` of "3.7" is 3, `default` replaces only Undefined unless its second
// argument is true, `length` of Undefined is 0. `tojson` is Hugging Face's override
// (json.dumps with ensure_ascii=False, indent, sort_keys; see io/jinja_json.h), not jinja2's
// HTML-escaping one.
//
// Filters: abs, capitalize, count, d, default, first, float, indent, int, items, join, last,
// length, list, lower, map, reject, rejectattr, replace, reverse, round, safe, select,
// selectattr, sort, string, sum, title, tojson, trim, unique, upper.
// Tests: boolean, callable, defined, divisibleby, eq, equalto, escaped, even, false, float, ge,
// gt, in, integer, iterable, le, lower, lt, mapping, ne, none, number, odd, sameas, sequence,
// string, true, undefined, upper, ==, !=, <, <=, >, >=.
#pragma once

#include <string>
#include <string_view>

#include "io/jinja_value.h"

namespace rlaif::jinja {

bool is_known_filter(std::string_view name);
bool is_known_test(std::string_view name);

// Throws Error naming the filter or test for bad arguments or operand types.
Value apply_filter(const std::string& name, const Value& input, const CallArgs& args);
bool apply_test(const std::string& name, const Value& value, const CallArgs& args);

}  // namespace rlaif::jinja
