#include "io/hf_normalizer.h"

#include <vector>

#include "io/hf_text.h"
#include "runtime/error.h"

namespace rlaif::hf {

std::string replace_all(const Regex& pattern, std::string_view text, std::string_view content) {
  std::string out;
  size_t prev = 0;
  for (const auto& [begin, end] : pattern.find_all(text)) {
    if (end == begin) continue;
    out.append(text.substr(prev, begin - prev));
    out.append(content);
    prev = end;
  }
  out.append(text.substr(prev));
  return out;
}

namespace {

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  std::string normalize(std::string text) const override { return unicode_normalize(text, form_); }

 private:
  NormalForm form_;
};

class Lowercase : public Normalizer {
 public:
  std::string normalize(std::string text) const override { return unicode_lowercase(text); }
};

// Removes leading and/or trailing Unicode whitespace.
class Strip : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end) {
        size_t pos = begin;
        if (!is_unicode_whitespace(utf8_next(text, pos))) break;
        begin = pos;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) >> 6) == 0x2) --start;
        size_t pos = start;
        if (!is_unicode_whitespace(utf8_next(text, pos))) break;
        end = start;
      }
    }
    return text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class Replace : public Normalizer {
 public:
  Replace(const std::string& pattern, std::string content, const std::string& origin)
      : pattern_(pattern, origin), content_(std::move(content)) {}
  std::string normalize(std::string text) const override {
    return replace_all(pattern_, text, content_);
  }

 private:
  Regex pattern_;
  std::string content_;
};

// Puts `prepend` in front of non-empty text.
class Prepend : public Normalizer {
 public:
  explicit Prepend(std::string prepend) : prepend_(std::move(prepend)) {}
  std::string normalize(std::string text) const override {
    return text.empty() ? text : prepend_ + text;
  }

 private:
  std::string prepend_;
};

class Sequence : public Normalizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  std::string normalize(std::string text) const override {
    for (const auto& p : parts_) text = p->normalize(std::move(text));
    return text;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const Json& json, const std::string& file) {
  const std::string origin = component_origin(file, "normalizer", json);
  const std::string type = type_of(json, origin);
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::nfc);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::nfd);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::nfkc);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::nfkd);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "Strip") {
    return std::make_unique<Strip>(bool_member(json, "strip_left", origin, true),
                                   bool_member(json, "strip_right", origin, true));
  }
  if (type == "Replace") {
    return std::make_unique<Replace>(pattern_member(json, "pattern", origin),
                                     string_member(json, "content", origin), origin);
  }
  if (type == "Prepend") return std::make_unique<Prepend>(string_member(json, "prepend", origin));
  if (type == "Sequence") {
    const Json* list = member(json, "normalizers");
    RLAIF_CHECK(list != nullptr && list->IsArray(), origin, ": \"normalizers\" must be a list");
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const Json& p : list->GetArray()) parts.push_back(make_normalizer(p, file));
    return std::make_unique<Sequence>(std::move(parts));
  }
  throw Error(origin, ": unsupported normalizer type \"", type, "\"");
}

}  // namespace rlaif::hf
