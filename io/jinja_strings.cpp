#include "io/jinja_strings.h"

#include <cctype>

#include "runtime/error.h"

namespace rlaif::jinja {

std::vector<size_t> code_point_starts(std::string_view s) {
  std::vector<size_t> starts;
  starts.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) starts.push_back(i);
  }
  starts.push_back(s.size());
  return starts;
}

size_t code_point_count(std::string_view s) {
  size_t count = 0;
  for (char c : s) count += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return count;
}

namespace {

// Decodes the code point starting at s[i] and sets `length` to its byte count.
uint32_t decode_at(std::string_view s, size_t i, size_t& length) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  int extra = c < 0x80 ? 0 : c < 0xe0 ? 1 : c < 0xf0 ? 2 : 3;
  uint32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1f) : extra == 2 ? (c & 0x0f) : (c & 0x07);
  length = 1;
  for (int k = 0; k < extra && i + length < s.size(); ++k, ++length) {
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + length]) & 0x3f);
  }
  return cp;
}

std::vector<uint32_t> decode_all(std::string_view s) {
  std::vector<uint32_t> out;
  for (size_t i = 0, n = 0; i < s.size(); i += n) out.push_back(decode_at(s, i, n));
  return out;
}

}  // namespace

bool is_python_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

size_t python_whitespace_prefix(std::string_view s) {
  size_t i = 0, n = 0;
  while (i < s.size() && is_python_space(decode_at(s, i, n))) i += n;
  return i;
}

std::string python_strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                         bool right) {
  std::vector<uint32_t> strip_set;
  if (chars) strip_set = decode_all(*chars);
  auto removable = [&](uint32_t cp) {
    if (!chars) return is_python_space(cp);
    for (uint32_t c : strip_set) {
      if (c == cp) return true;
    }
    return false;
  };
  std::vector<size_t> starts = code_point_starts(s);
  size_t first = 0, last = starts.size() - 1;  // code-point indices [first, last)
  size_t n = 0;
  if (left) {
    while (first < last && removable(decode_at(s, starts[first], n))) ++first;
  }
  if (right) {
    while (last > first && removable(decode_at(s, starts[last - 1], n))) --last;
  }
  return std::string(s.substr(starts[first], starts[last] - starts[first]));
}

std::vector<std::string> python_split(std::string_view s, const std::optional<std::string>& sep,
                                      int64_t maxsplit) {
  std::vector<std::string> parts;
  if (sep) {
    RLAIF_CHECK(!sep->empty(), "str.split: empty separator");
    size_t pos = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      size_t hit = s.find(*sep, pos);
      if (hit == std::string_view::npos) break;
      parts.emplace_back(s.substr(pos, hit - pos));
      pos = hit + sep->size();
    }
    parts.emplace_back(s.substr(pos));
    return parts;
  }
  size_t i = 0, n = 0;
  while (i < s.size()) {
    while (i < s.size() && is_python_space(decode_at(s, i, n))) i += n;
    if (i >= s.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
      // The rest, with its trailing whitespace removed.
      parts.push_back(python_strip(s.substr(i), std::nullopt, false, true));
      return parts;
    }
    size_t start = i;
    while (i < s.size() && !is_python_space(decode_at(s, i, n))) i += n;
    parts.emplace_back(s.substr(start, i - start));
  }
  return parts;
}

std::string python_replace(std::string_view s, std::string_view old_text, std::string_view new_text,
                           int64_t count) {
  std::string out;
  if (old_text.empty()) {
    // Python inserts `new` before every code point and at the end.
    std::vector<size_t> starts = code_point_starts(s);
    int64_t done = 0;
    for (size_t k = 0; k + 1 < starts.size(); ++k) {
      if (count < 0 || done < count) {
        out += new_text;
        ++done;
      }
      out += s.substr(starts[k], starts[k + 1] - starts[k]);
    }
    if (count < 0 || done < count) out += new_text;
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t hit = s.find(old_text, pos);
    if (hit == std::string_view::npos) break;
    out += s.substr(pos, hit - pos);
    out += new_text;
    pos = hit + old_text.size();
    ++done;
  }
  out += s.substr(pos);
  return out;
}

std::string ascii_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string python_title(std::string_view s) {
  std::string out(s);
  bool previous_is_letter = false;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    bool letter = std::isalpha(u) != 0;
    if (letter) c = static_cast<char>(previous_is_letter ? std::tolower(u) : std::toupper(u));
    previous_is_letter = letter;
  }
  return out;
}

std::string python_capitalize(std::string_view s) {
  std::string out = ascii_lower(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

}  // namespace rlaif::jinja
