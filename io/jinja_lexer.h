// Splits Jinja template text into tokens: text to copy, the delimiters of {{ ... }} and
// {% ... %}, and the names, literals and operators inside them. Comments {# ... #} and
// {% raw %} blocks are resolved here.
//
// Whitespace control follows jinja2 as Hugging Face configures it (trim_blocks and
// lstrip_blocks on, keep_trailing_newline off):
//   - line endings become "\n" and one newline at the very end of the template is dropped;
//   - "{%-", "{{-", "{#-" remove all whitespace before the tag; "-%}", "-}}", "-#}" all after;
//   - trim_blocks: the first newline after "%}" or "#}" is removed ("+%}" keeps it);
//   - lstrip_blocks: whitespace between the start of a line and "{%" or "{#" is removed
//     ("{%+" keeps them); "{{" is never lstripped.
// "Whitespace" is Python's (Unicode's), as jinja2's regular expressions see it. Inside a tag, a
// closing delimiter counts only outside brackets, so {{ {'a': {}} }} works.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rlaif::jinja {

struct Token {
  enum class Type {
    kText,           // literal template text, already whitespace-controlled
    kVariableBegin,  // {{
    kVariableEnd,    // }}
    kBlockBegin,     // {%
    kBlockEnd,       // %}
    kName,
    kString,   // text: the decoded string
    kInteger,  // text: the digits, underscores removed
    kFloat,
    kOperator,  // text: + - * / // % ** ~ == != < <= > >= = ( ) [ ] { } , . : |
    kEnd,
  };
  Type type;
  std::string text;
  int line;  // 1-based line of the template where the token starts
};

// Throws Error naming the line for an unterminated tag, comment or string, or a character that
// starts no token.
std::vector<Token> tokenize_template(std::string_view source);

}  // namespace rlaif::jinja
