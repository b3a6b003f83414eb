#include "io/api_key.h"

#include <cctype>
#include <string_view>

namespace rlaif {
namespace {

// Compares in time that depends only on the expected key's length, so that response times do
// not reveal how much of a guess was right.
bool equal_constant_time(const std::string& given, const std::string& expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const char g = i < given.size() ? given[i] : '\0';
    diff |= static_cast<unsigned char>(g ^ expected[i]);
  }
  return diff == 0;
}

// The token of an "Authorization: Bearer TOKEN" header ("" when the header is another scheme).
std::string bearer_token(const std::string& header) {
  constexpr std::string_view scheme = "bearer ";
  if (header.size() < scheme.size()) return "";
  for (size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) return "";
  size_t start = scheme.size();
  while (start < header.size() && header[start] == ' ') ++start;
  return header.substr(start);
}

}  // namespace

bool api_key_matches(const std::string& authorization, const std::string& key) {
  return equal_constant_time(bearer_token(authorization), key);
}

}  // namespace rlaif
