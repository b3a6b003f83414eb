// Normalizers of Hugging Face tokenizers: rewrite text before it is split into words. Supported:
// NFC, NFD, NFKC, NFKD (ICU), Lowercase, Strip, Replace (String or Regex pattern), Prepend, and
// Sequence of these. Offsets back into the original text are not tracked: rlaif needs ids only.
#pragma once

#include <memory>
#include <string>

#include "io/hf_json.h"
#include "io/hf_text.h"

namespace rlaif::hf {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string text) const = 0;
};

// Builds the normalizer described by `json`; an unknown type or option is an Error naming `file`.
std::unique_ptr<Normalizer> make_normalizer(const Json& json, const std::string& file);

// Replaces every match of `pattern` (a PCRE2 expression) with `content`; shared with decoders.
std::string replace_all(const Regex& pattern, std::string_view text, std::string_view content);

}  // namespace rlaif::hf
