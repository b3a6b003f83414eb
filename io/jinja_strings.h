// Python's str operations that templates use, on UTF-8 text: code-point counting and slicing,
// strip with Python's notion of whitespace (Unicode's, not only ASCII's), split, replace, case.
// Case mapping covers ASCII only; other characters keep their case.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rlaif::jinja {

// The byte offset where each code point starts, plus one past the end (size() + 1 entries).
std::vector<size_t> code_point_starts(std::string_view s);
size_t code_point_count(std::string_view s);
// Python's str.isspace() for one code point.
bool is_python_space(uint32_t code_point);

// The byte length of the whitespace (Python's isspace) at the start of `s`.
size_t python_whitespace_prefix(std::string_view s);
// Python's str.strip/lstrip/rstrip: `chars` is the set of code points to remove (std::nullopt
// for whitespace).
std::string python_strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                         bool right);
// Python's str.split(sep, maxsplit); sep = nullopt splits on runs of whitespace.
std::vector<std::string> python_split(std::string_view s, const std::optional<std::string>& sep,
                                      int64_t maxsplit);
// Python's str.replace(old, new, count); count < 0 replaces all.
std::string python_replace(std::string_view s, std::string_view old_text, std::string_view new_text,
                           int64_t count);
std::string ascii_upper(std::string_view s);
std::string ascii_lower(std::string_view s);
// Python's str.title() and str.capitalize() (ASCII letters only).
std::string python_title(std::string_view s);
std::string python_capitalize(std::string_view s);

}  // namespace rlaif::jinja
