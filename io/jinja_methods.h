// How a template reaches into values: attribute access (x.name), subscripts (x[k], x[a:b:c]),
// iteration, and the Python methods templates call on strings and dicts.
//
// As in jinja2, x.name on a dict first looks for a dict method of that name (items, keys,
// values, get) and then for the key, while x["name"] looks for the key first. A missing key,
// attribute or index gives Undefined rather than an error; the error comes only when the
// Undefined is used in a way jinja2 rejects (arithmetic, attribute access, calls).
// String methods: startswith, endswith (a string or a tuple of them), strip, lstrip, rstrip,
// split (with maxsplit), upper, lower, replace, title, capitalize, join, find,
// count, format ("{}" and "{0}" fields only). Dict methods: get, items, keys, values.
#pragma once

#include <string>

#include "io/jinja_value.h"

namespace rlaif::jinja {

Value get_attribute(const Value& object, const std::string& name);
Value get_item(const Value& object, const Value& key);
// Python's object[start:stop:step] on a list or string; null pointers are omitted bounds.
Value get_slice(const Value& object, const Value* start, const Value* stop, const Value* step);
// The items a for loop visits: a list's items, a dict's keys, a string's characters; none for
// Undefined. Throws Error for values that cannot be iterated.
List iterate(const Value& value);

}  // namespace rlaif::jinja
