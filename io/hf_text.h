// Unicode text tools for the Hugging Face tokenizer pipeline, all on UTF-8 std::string.
//
// Nothing here knows Unicode tables itself: regular expressions go to PCRE2 (UTF + UCP mode, so
// \p{L}, \s and (?i:...) follow Unicode properties, as Oniguruma's do for the Rust `tokenizers`
// crate), and normalisation and case mapping go to ICU. What remains is plain UTF-8 arithmetic
// and the GPT-2 byte-to-character table used by ByteLevel pre-tokenizers and decoders.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rlaif::hf {

// Byte length of the UTF-8 sequence that starts with `lead` (1 for stray continuation bytes, so
// loops over malformed text still advance).
size_t utf8_length(unsigned char lead);
// Decodes the code point at text[pos] (U+FFFD for malformed bytes) and advances pos.
char32_t utf8_next(std::string_view text, size_t& pos);
void utf8_append(std::string& out, char32_t cp);
// Splits into code points, each as its UTF-8 bytes.
std::vector<std::string_view> utf8_chars(std::string_view text);
// The UTF-8 sequence that starts at text[pos] (a lead byte of 0x80 or above): `length` is the
// length its lead byte announces (0 when the byte cannot start a sequence), `valid` how many of
// its bytes form a well-formed prefix (at least 1). Well-formed follows Unicode's table 3-7, so
// overlong forms and surrogates are not.
struct Utf8Sequence {
  size_t length = 0;
  size_t valid = 1;
};
Utf8Sequence utf8_sequence_at(std::string_view text, size_t pos);
// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view text);
// `text` with each malformed UTF-8 sequence replaced by U+FFFD (as utf8_next reads it).
std::string replace_invalid_utf8(std::string_view text);
// Rust's char::is_whitespace (Unicode White_Space).
bool is_unicode_whitespace(char32_t cp);

// Compiled PCRE2 pattern. Immutable after construction; safe to share between threads (each
// search allocates its own match data).
class Regex {
 public:
  enum class Syntax { oniguruma, pcre2 };
  // `pattern` is in Oniguruma syntax (see oniguruma_to_pcre2), or in PCRE2's own (as a user
  // writes it: no rewriting, so an error's offset points into `pattern`). Throws Error naming
  // `origin` (the file and component, or the flag, that supplied the pattern) and the offset
  // when PCRE2 rejects it. Matching is in UTF + UCP mode either way.
  Regex(const std::string& pattern, const std::string& origin, Syntax syntax = Syntax::oniguruma);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Byte ranges [begin, end) of the successive non-overlapping matches, as Rust's find_iter: an
  // empty match advances one character.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  // `text` must be well-formed UTF-8 (is_valid_utf8; see replace_invalid_utf8).
  bool matches_somewhere(std::string_view text) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8
};

// `pattern` (Oniguruma syntax, as tokenizer.json files are written for the Rust crate) with the
// shorthands whose Unicode meaning differs in PCRE2 spelled out as Oniguruma defines them:
// \s and \S become the White_Space property (PCRE2's \s also takes U+180E, which Unicode no
// longer counts as space), \w and \W become Alphabetic, marks, decimal digits and connector
// punctuation (PCRE2's \w is letters, all numbers and "_"). Error naming `origin` for \W inside
// a character class, which PCRE2 cannot express.
std::string oniguruma_to_pcre2(std::string_view pattern, const std::string& origin);

// A regular expression that matches `literal` exactly (every metacharacter escaped).
std::string escape_regex(std::string_view literal);

enum class NormalForm { nfc, nfd, nfkc, nfkd };
std::string unicode_normalize(std::string_view text, NormalForm form);
// Full lower-case mapping of each code point on its own (Rust's char::to_lowercase: no
// context-dependent rules such as Greek final sigma).
std::string unicode_lowercase(std::string_view text);

// GPT-2's reversible byte <-> printable character table: bytes that are printable Latin-1 map to
// themselves, the others to U+0100 onward. byte_level_chars()[b] is the UTF-8 of byte b's char.
const std::vector<std::string>& byte_level_chars();
// The byte a code point stands for, or -1 when it is not in the table.
int byte_level_byte(char32_t cp);

}  // namespace rlaif::hf
