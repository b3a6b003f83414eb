#include "io/jinja_lexer.h"

#include <algorithm>
#include <cctype>

#include "io/hf_text.h"
#include "io/jinja_strings.h"
#include "runtime/error.h"

namespace rlaif::jinja {
namespace {

// "\r\n" and "\r" become "\n"; one final newline goes (jinja2's keep_trailing_newline=False).
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Python's "unicode-escape" decoding of a string literal's body, as jinja2 applies it.
std::string unescape_string(std::string_view body, int line) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\' || i + 1 == body.size()) {
      out += body[i];
      continue;
    }
    char c = body[++i];
    auto hex = [&](size_t digits) {
      uint32_t cp = 0;
      for (size_t k = 0; k < digits; ++k) {
        RLAIF_CHECK(i + 1 < body.size() && std::isxdigit(static_cast<unsigned char>(body[i + 1])),
                    "jinja: line ", line, ": truncated \\x/\\u escape in a string literal");
        char h = body[++i];
        cp = cp * 16 +
             (std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      hf::utf8_append(out, static_cast<char32_t>(cp));
    };
    switch (c) {
      case '\n':
        break;
      case '\\':
        out += '\\';
        break;
      case '\'':
        out += '\'';
        break;
      case '"':
        out += '"';
        break;
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case 'x':
        hex(2);
        break;
      case 'u':
        hex(4);
        break;
      case 'U':
        hex(8);
        break;
      case 'N':
        throw Error("jinja: line ", line, ": \\N{...} escapes are not supported");
      default:
        if (c >= '0' && c <= '7') {
          uint32_t cp = c - '0';
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7';
               ++k) {
            cp = cp * 8 + (body[++i] - '0');
          }
          hf::utf8_append(out, static_cast<char32_t>(cp));
        } else {
          out += '\\';
          out += c;
        }
    }
  }
  return out;
}

// The end of the run of (Python, so Unicode) whitespace starting at `pos`.
size_t skip_space(const std::string& s, size_t pos) {
  return pos + python_whitespace_prefix(std::string_view(s).substr(std::min(pos, s.size())));
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) : src_(normalize_newlines(source)) {
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') newlines_.push_back(i);
    }
  }

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < src_.size()) {
      size_t open = find_tag_open(pos);
      if (open == std::string::npos) {
        emit_text(src_.substr(pos), pos);
        break;
      }
      char kind = src_[open + 1];
      char modifier = open + 2 < src_.size() ? src_[open + 2] : '\0';
      std::string text = src_.substr(pos, open - pos);
      if (modifier == '-') {
        text = python_strip(text, std::nullopt, false, true);
      } else if (modifier != '+' && kind != '{') {
        size_t line_start = text.rfind('\n');
        line_start = line_start == std::string::npos ? 0 : line_start + 1;
        if ((line_start > 0 || line_starting) && line_start < text.size() &&
            python_strip(text.substr(line_start), std::nullopt, true, false).empty()) {
          text.resize(line_start);
        }
      }
      emit_text(text, pos);
      size_t inner = open + 2 + (modifier == '-' || modifier == '+' ? 1 : 0);
      if (kind == '#') {
        pos = lex_comment(open, inner);
      } else if (kind == '%' && is_raw_begin(inner)) {
        pos = lex_raw(open);
      } else {
        pos = lex_tag(kind, open, inner);
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    tokens_.push_back({Token::Type::kEnd, "", line_at(src_.size())});
    return std::move(tokens_);
  }

 private:
  // 1 + the newlines before `pos`, found by binary search (every token asks: counting from the
  // start each time would make lexing quadratic in the template's length).
  int line_at(size_t pos) const {
    return 1 + static_cast<int>(std::lower_bound(newlines_.begin(), newlines_.end(), pos) -
                                newlines_.begin());
  }

  void emit_text(const std::string& text, size_t at) {
    if (!text.empty()) tokens_.push_back({Token::Type::kText, text, line_at(at)});
  }

  size_t find_tag_open(size_t pos) const {
    while (true) {
      size_t hit = src_.find('{', pos);
      if (hit == std::string::npos || hit + 1 >= src_.size()) return std::string::npos;
      char next = src_[hit + 1];
      if (next == '{' || next == '%' || next == '#') return hit;
      pos = hit + 1;
    }
  }

  // After a closing delimiter ending at `pos`: "-" removes all following whitespace, and with
  // trim_blocks a block or comment end removes one newline.
  size_t after_close(size_t pos, char modifier, bool trims_newline) const {
    if (modifier == '-') {
      pos = skip_space(src_, pos);
    } else if (modifier != '+' && trims_newline && pos < src_.size() && src_[pos] == '\n') {
      ++pos;
    }
    return pos;
  }

  size_t lex_comment(size_t open, size_t inner) {
    size_t close = src_.find("#}", inner);
    RLAIF_CHECK(close != std::string::npos, "jinja: line ", line_at(open),
                ": comment {# is never closed");
    char modifier = close > inner && (src_[close - 1] == '-' || src_[close - 1] == '+')
                        ? src_[close - 1]
                        : '\0';
    return after_close(close + 2, modifier, true);
  }

  // Whether the block starting after "{%" (and its modifier) at `inner` is "raw".
  bool is_raw_begin(size_t inner) const {
    size_t p = inner;
    p = skip_space(src_, p);
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    p = skip_space(src_, p);
    return src_.compare(p, 2, "%}") == 0 || src_.compare(p, 3, "-%}") == 0;
  }

  size_t lex_raw(size_t open) {
    size_t begin_close = src_.find("%}", open);
    size_t body = begin_close + 2;
    if (src_[begin_close - 1] == '-') body = after_close(body, '-', false);
    size_t search = body;
    while (true) {
      size_t tag = src_.find("{%", search);
      RLAIF_CHECK(tag != std::string::npos, "jinja: line ", line_at(open),
                  ": {% raw %} is never closed by {% endraw %}");
      size_t p = tag + 2;
      char modifier = src_[p] == '-' || src_[p] == '+' ? src_[p++] : '\0';
      p = skip_space(src_, p);
      if (src_.compare(p, 6, "endraw") != 0) {
        search = tag + 2;
        continue;
      }
      p += 6;
      p = skip_space(src_, p);
      char end_modifier = '\0';
      if (src_[p] == '-' || src_[p] == '+') end_modifier = src_[p++];
      RLAIF_CHECK(src_.compare(p, 2, "%}") == 0, "jinja: line ", line_at(tag),
                  ": malformed {% endraw %}");
      std::string text = src_.substr(body, tag - body);
      if (modifier == '-') {
        text = python_strip(text, std::nullopt, false, true);
      } else if (modifier != '+') {
        size_t line_start = text.rfind('\n');
        if (line_start != std::string::npos &&
            python_strip(text.substr(line_start + 1), std::nullopt, true, false).empty()) {
          text.resize(line_start + 1);
        }
      }
      emit_text(text, body);
      return after_close(p + 2, end_modifier, true);
    }
  }

  size_t lex_tag(char kind, size_t open, size_t pos) {
    bool is_block = kind == '%';
    tokens_.push_back({is_block ? Token::Type::kBlockBegin : Token::Type::kVariableBegin,
                       is_block ? "{%" : "{{", line_at(open)});
    const std::string close = is_block ? "%}" : "}}";
    std::vector<char> brackets;
    while (true) {
      pos = skip_space(src_, pos);
      RLAIF_CHECK(pos < src_.size(), "jinja: line ", line_at(open), ": ", is_block ? "{%" : "{{",
                  " is never closed");
      if (brackets.empty()) {
        for (char modifier : {'-', '+', '\0'}) {
          if (modifier == '+' && !is_block) continue;
          size_t at = pos + (modifier ? 1 : 0);
          if ((modifier == 0 || src_[pos] == modifier) && src_.compare(at, 2, close) == 0) {
            tokens_.push_back({is_block ? Token::Type::kBlockEnd : Token::Type::kVariableEnd, close,
                               line_at(pos)});
            return after_close(at + 2, modifier, is_block);
          }
        }
      }
      lex_token(pos, brackets);
    }
  }

  void lex_token(size_t& pos, std::vector<char>& brackets) {
    int line = line_at(pos);
    char c = src_[pos];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t start = pos;
      while (pos < src_.size() &&
             (std::isalnum(static_cast<unsigned char>(src_[pos])) || src_[pos] == '_')) {
        ++pos;
      }
      tokens_.push_back({Token::Type::kName, src_.substr(start, pos - start), line});
      return;
    }
    if (c == '\'' || c == '"') {
      size_t p = pos + 1;
      while (p < src_.size() && src_[p] != c) p += src_[p] == '\\' ? 2 : 1;
      RLAIF_CHECK(p < src_.size(), "jinja: line ", line, ": unterminated string literal");
      tokens_.push_back({Token::Type::kString,
                         unescape_string(std::string_view(src_).substr(pos + 1, p - pos - 1), line),
                         line});
      pos = p + 1;
      return;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      lex_number(pos, line);
      return;
    }
    static const char* const kTwoChar[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : kTwoChar) {
      if (src_.compare(pos, 2, op) == 0) {
        tokens_.push_back({Token::Type::kOperator, op, line});
        pos += 2;
        return;
      }
    }
    static const std::string kOneChar = "+-*/%~<>=()[]{},.:|";
    RLAIF_CHECK(kOneChar.find(c) != std::string::npos, "jinja: line ", line,
                ": unexpected character '", c, "' in a tag");
    if (c == '(' || c == '[' || c == '{') brackets.push_back(c);
    if (c == ')' || c == ']' || c == '}') {
      char expected = c == ')' ? '(' : c == ']' ? '[' : '{';
      RLAIF_CHECK(!brackets.empty() && brackets.back() == expected, "jinja: line ", line,
                  ": unbalanced '", c, "'");
      brackets.pop_back();
    }
    tokens_.push_back({Token::Type::kOperator, std::string(1, c), line});
    ++pos;
  }

  void lex_number(size_t& pos, int line) {
    auto digits = [&](size_t p) {
      while (p < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[p])) ||
                                 (src_[p] == '_' && p + 1 < src_.size() &&
                                  std::isdigit(static_cast<unsigned char>(src_[p + 1]))))) {
        ++p;
      }
      return p;
    };
    size_t start = pos;
    size_t p = digits(pos);
    bool is_float = false;
    if (p + 1 < src_.size() && src_[p] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[p + 1]))) {
      p = digits(p + 1);
      is_float = true;
    }
    if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
      size_t q = p + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && std::isdigit(static_cast<unsigned char>(src_[q]))) {
        p = digits(q);
        is_float = true;
      }
    }
    std::string text = src_.substr(start, p - start);
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    tokens_.push_back({is_float ? Token::Type::kFloat : Token::Type::kInteger, text, line});
    pos = p;
  }

  std::string src_;
  std::vector<size_t> newlines_;  // the positions of every newline in src_, ascending
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize_template(std::string_view source) {
  return Lexer(source).run();
}

}  // namespace rlaif::jinja
