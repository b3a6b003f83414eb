#include "io/hf_text.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "runtime/error.h"

namespace rlaif::hf {

size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

char32_t utf8_next(std::string_view text, size_t& pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  const size_t n = utf8_length(lead);
  if (n == 1 || pos + n > text.size()) {
    ++pos;
    return lead < 0x80 ? lead : 0xFFFD;
  }
  char32_t cp = lead & (0x7F >> n);
  for (size_t i = 1; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[pos + i]);
    if ((c >> 6) != 0x2) {
      ++pos;
      return 0xFFFD;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  pos += n;
  return cp;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::vector<std::string_view> utf8_chars(std::string_view text) {
  std::vector<std::string_view> chars;
  chars.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t begin = pos;
    utf8_next(text, pos);
    chars.push_back(text.substr(begin, pos - begin));
  }
  return chars;
}

Utf8Sequence utf8_sequence_at(std::string_view text, size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  Utf8Sequence seq;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    seq.length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    seq.length = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    seq.length = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return seq;
  }
  while (seq.valid < seq.length && pos + seq.valid < text.size()) {
    const auto c = static_cast<unsigned char>(text[pos + seq.valid]);
    if (seq.valid == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) break;
    ++seq.valid;
  }
  return seq;
}

bool is_valid_utf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const Utf8Sequence seq = utf8_sequence_at(text, pos);
    if (seq.length == 0 || seq.valid != seq.length) return false;
    pos += seq.length;
  }
  return true;
}

std::string replace_invalid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      out += text[pos++];
      continue;
    }
    const Utf8Sequence seq = utf8_sequence_at(text, pos);
    if (seq.length != 0 && seq.valid == seq.length) {
      out.append(text.substr(pos, seq.length));
    } else {
      utf8_append(out, 0xFFFD);  // one for each maximal ill-formed subpart (Unicode 3.9)
    }
    pos += seq.length != 0 && seq.valid == seq.length ? seq.length : seq.valid;
  }
  return out;
}

bool is_unicode_whitespace(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  return u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_WHITE_SPACE);
}

// ---- Regex ----

namespace {
pcre2_code* as_code(void* p) {
  return static_cast<pcre2_code*>(p);
}
}  // namespace

std::string oniguruma_to_pcre2(std::string_view pattern, const std::string& origin) {
  static constexpr std::string_view kWordChars = R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc})";
  std::string out;
  out.reserve(pattern.size() + 16);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 'Q') {  // \Q...\E quotes everything up to \E
        const size_t end = pattern.find("\\E", i + 1);
        const size_t stop = end == std::string_view::npos ? pattern.size() : end + 2;
        out.append("\\Q").append(pattern.substr(i + 1, stop - i - 1));
        i = stop - 1;
      } else if (e == 's') {
        out += "\\p{White_Space}";
      } else if (e == 'S') {
        out += "\\P{White_Space}";
      } else if (e == 'w') {
        out += in_class ? std::string(kWordChars) : "[" + std::string(kWordChars) + "]";
      } else if (e == 'W') {
        RLAIF_CHECK(!in_class, origin, ": regular expression '", pattern,
                    "': \\W inside a character class is not supported");
        out += "[^" + std::string(kWordChars) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];  // literal ]
      continue;
    }
    if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      const size_t end = pattern.find(":]", i + 2);  // POSIX class such as [:alpha:]
      if (end != std::string_view::npos) {
        out.append(pattern.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

Regex::Regex(const std::string& source_pattern, const std::string& origin, Syntax syntax) {
  const std::string pattern =
      syntax == Syntax::oniguruma ? oniguruma_to_pcre2(source_pattern, origin) : source_pattern;
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    throw Error(origin, ": regular expression '", pattern, "' does not compile at offset ",
                error_offset, ": ", reinterpret_cast<const char*>(message));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when unavailable
  code_ = code;
}

Regex::~Regex() {
  pcre2_code_free(as_code(code_));
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> found;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(as_code(code_), nullptr);
  size_t start = 0;
  while (start <= text.size()) {
    const int rc = pcre2_match(as_code(code_), reinterpret_cast<PCRE2_SPTR>(text.data()),
                               text.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    found.emplace_back(ov[0], ov[1]);
    if (ov[1] > ov[0]) {
      start = ov[1];
    } else {
      if (ov[1] >= text.size()) break;
      start = ov[1] + utf8_length(static_cast<unsigned char>(text[ov[1]]));
    }
  }
  pcre2_match_data_free(md);
  return found;
}

bool Regex::matches_somewhere(std::string_view text) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(as_code(code_), nullptr);
  const int rc = pcre2_match(as_code(code_), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                             0, PCRE2_NO_UTF_CHECK, md, nullptr);
  pcre2_match_data_free(md);
  return rc >= 0;
}

std::string escape_regex(std::string_view literal) {
  std::string out = "\\Q";
  size_t pos = 0;
  // \Q...\E quotes everything except a literal "\E", which is split out.
  while (true) {
    const size_t e = literal.find("\\E", pos);
    if (e == std::string_view::npos) break;
    out.append(literal.substr(pos, e - pos));
    out += "\\E\\\\E\\Q";
    pos = e + 2;
  }
  out.append(literal.substr(pos));
  out += "\\E";
  return out;
}

// ---- ICU ----

namespace {

std::u16string to_utf16(std::string_view text) {
  std::u16string out(text.size() + 1, u'\0');
  int32_t length = 0;
  UErrorCode status = U_ZERO_ERROR;
  u_strFromUTF8WithSub(reinterpret_cast<UChar*>(out.data()), static_cast<int32_t>(out.size()),
                       &length, text.data(), static_cast<int32_t>(text.size()), 0xFFFD, nullptr,
                       &status);
  RLAIF_CHECK(U_SUCCESS(status), "UTF-8 to UTF-16 conversion failed: ", u_errorName(status));
  out.resize(static_cast<size_t>(length));
  return out;
}

std::string to_utf8(const std::u16string& text) {
  std::string out(text.size() * 3 + 1, '\0');
  int32_t length = 0;
  UErrorCode status = U_ZERO_ERROR;
  u_strToUTF8(out.data(), static_cast<int32_t>(out.size()), &length,
              reinterpret_cast<const UChar*>(text.data()), static_cast<int32_t>(text.size()),
              &status);
  RLAIF_CHECK(U_SUCCESS(status), "UTF-16 to UTF-8 conversion failed: ", u_errorName(status));
  out.resize(static_cast<size_t>(length));
  return out;
}

bool is_ascii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

}  // namespace

std::string unicode_normalize(std::string_view text, NormalForm form) {
  if (is_ascii(text)) return std::string(text);  // ASCII is invariant under all four forms
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* norm = nullptr;
  switch (form) {
    case NormalForm::nfc:
      norm = unorm2_getNFCInstance(&status);
      break;
    case NormalForm::nfd:
      norm = unorm2_getNFDInstance(&status);
      break;
    case NormalForm::nfkc:
      norm = unorm2_getNFKCInstance(&status);
      break;
    case NormalForm::nfkd:
      norm = unorm2_getNFKDInstance(&status);
      break;
  }
  RLAIF_CHECK(U_SUCCESS(status), "ICU normalizer unavailable: ", u_errorName(status));
  const std::u16string source = to_utf16(text);
  std::u16string out(source.size() * 4 + 16, u'\0');
  status = U_ZERO_ERROR;
  int32_t length = unorm2_normalize(
      norm, reinterpret_cast<const UChar*>(source.data()), static_cast<int32_t>(source.size()),
      reinterpret_cast<UChar*>(out.data()), static_cast<int32_t>(out.size()), &status);
  if (status == U_BUFFER_OVERFLOW_ERROR) {
    out.assign(static_cast<size_t>(length) + 1, u'\0');
    status = U_ZERO_ERROR;
    length = unorm2_normalize(
        norm, reinterpret_cast<const UChar*>(source.data()), static_cast<int32_t>(source.size()),
        reinterpret_cast<UChar*>(out.data()), static_cast<int32_t>(out.size()), &status);
  }
  RLAIF_CHECK(U_SUCCESS(status), "ICU normalization failed: ", u_errorName(status));
  out.resize(static_cast<size_t>(length));
  return to_utf8(out);
}

std::string unicode_lowercase(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const auto c = static_cast<unsigned char>(text[pos]);
    if (c < 0x80) {
      out += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
      ++pos;
      continue;
    }
    const size_t begin = pos;
    utf8_next(text, pos);
    const std::u16string one = to_utf16(text.substr(begin, pos - begin));
    UChar lower[16];
    UErrorCode status = U_ZERO_ERROR;
    const int32_t n = u_strToLower(lower, 16, reinterpret_cast<const UChar*>(one.data()),
                                   static_cast<int32_t>(one.size()), "", &status);
    RLAIF_CHECK(U_SUCCESS(status), "ICU lower-casing failed: ", u_errorName(status));
    out +=
        to_utf8(std::u16string(reinterpret_cast<const char16_t*>(lower), static_cast<size_t>(n)));
  }
  return out;
}

// ---- byte level ----

namespace {

struct ByteLevelTable {
  std::vector<std::string> chars = std::vector<std::string>(256);
  std::vector<int> byte_of_cp = std::vector<int>(512, -1);
  ByteLevelTable() {
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const int cp = printable ? b : next++;
      utf8_append(chars[static_cast<size_t>(b)], static_cast<char32_t>(cp));
      byte_of_cp[static_cast<size_t>(cp)] = b;
    }
  }
};

const ByteLevelTable& byte_level_table() {
  static const ByteLevelTable table;
  return table;
}

}  // namespace

const std::vector<std::string>& byte_level_chars() {
  return byte_level_table().chars;
}

int byte_level_byte(char32_t cp) {
  const auto& t = byte_level_table().byte_of_cp;
  return cp < t.size() ? t[cp] : -1;
}

}  // namespace rlaif::hf
