#include "io/hf_decoder.h"

#include "io/hf_normalizer.h"
#include "io/hf_text.h"
#include "runtime/error.h"

namespace rlaif::hf {

std::string utf8_lossy(std::string_view bytes) {
  if (is_valid_utf8(bytes)) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    const auto lead = static_cast<unsigned char>(bytes[pos]);
    if (lead < 0x80) {
      out += static_cast<char>(lead);
      ++pos;
      continue;
    }
    const Utf8Sequence seq = utf8_sequence_at(bytes, pos);
    if (seq.length > 0 && seq.valid == seq.length) {
      out.append(bytes.substr(pos, seq.length));
    } else {
      out += "\xEF\xBF\xBD";
    }
    pos += seq.valid;
  }
  return out;
}

namespace {

class ByteLevel : public Decoder {
 public:
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      const size_t start = bytes.size();
      size_t pos = 0;
      bool all_mapped = true;
      while (pos < t.size()) {
        const int b = byte_level_byte(utf8_next(t, pos));
        if (b < 0) {
          all_mapped = false;
          break;
        }
        bytes += static_cast<char>(b);
      }
      if (!all_mapped) {  // a token outside the byte alphabet stands for its own bytes
        bytes.resize(start);
        bytes += t;
      }
    }
    return {utf8_lossy(bytes)};
  }
};

class Metaspace : public Decoder {
 public:
  Metaspace(std::string replacement, bool prepended)
      : replacement_(std::move(replacement)), prepended_(prepended) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      for (std::string_view c : utf8_chars(tokens[i])) {
        if (c == replacement_) {
          if (!(i == 0 && prepended_)) out += ' ';
        } else {
          out += c;
        }
      }
      tokens[i] = std::move(out);
    }
    return tokens;
  }

 private:
  std::string replacement_;
  bool prepended_;
};

// The byte of a "<0xAB>" piece, or -1.
int fallback_byte(const std::string& t) {
  if (t.size() != 6 || !t.starts_with("<0x") || t[5] != '>') return -1;
  int value = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = t[static_cast<size_t>(i)];
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (d < 0) return -1;
    value = value * 16 + d;
  }
  return value;
}

class ByteFallback : public Decoder {
 public:
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (is_valid_utf8(pending)) {
        out.push_back(pending);
      } else {  // invalid bytes: one U+FFFD for each
        for (size_t i = 0; i < pending.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& t : tokens) {
      const int b = fallback_byte(t);
      if (b >= 0) {
        pending += static_cast<char>(b);
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    return out;
  }
};

class Fuse : public Decoder {
 public:
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    return {all};
  }
};

// Removes up to `start` leading and `stop` trailing copies of the character `content`.
class Strip : public Decoder {
 public:
  Strip(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (std::string& t : tokens) {
      const auto chars = utf8_chars(t);
      size_t begin = 0, end = chars.size();
      while (begin < start_ && begin < end && chars[begin] == content_) ++begin;
      while (chars.size() - end < stop_ && end > begin && chars[end - 1] == content_) --end;
      std::string out;
      for (size_t i = begin; i < end; ++i) out += chars[i];
      t = std::move(out);
    }
    return tokens;
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class Replace : public Decoder {
 public:
  Replace(const std::string& pattern, std::string content, const std::string& origin)
      : pattern_(pattern, origin), content_(std::move(content)) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (std::string& t : tokens) t = replace_all(pattern_, t, content_);
    return tokens;
  }

 private:
  Regex pattern_;
  std::string content_;
};

class Sequence : public Decoder {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (const auto& p : parts_) tokens = p->decode_chain(std::move(tokens));
    return tokens;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

size_t count_member(const Json& json, const char* name, const std::string& origin) {
  const Json* v = member(json, name);
  if (v == nullptr) return 0;
  RLAIF_CHECK(v->IsUint(), origin, ": \"", name, "\" must be a non-negative integer");
  return v->GetUint();
}

}  // namespace

std::unique_ptr<Decoder> make_byte_level_decoder() {
  return std::make_unique<ByteLevel>();
}

std::unique_ptr<Decoder> make_decoder(const Json& json, const std::string& file) {
  const std::string origin = component_origin(file, "decoder", json);
  const std::string type = type_of(json, origin);
  if (type == "ByteLevel") return std::make_unique<ByteLevel>();
  if (type == "Metaspace") {
    bool prepended = bool_member(json, "add_prefix_space", origin, true);
    if (member(json, "prepend_scheme") != nullptr) {
      prepended = string_member(json, "prepend_scheme", origin) != "never";
    }
    return std::make_unique<Metaspace>(string_member(json, "replacement", origin, "\xE2\x96\x81"),
                                       prepended);
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallback>();
  if (type == "Fuse") return std::make_unique<Fuse>();
  if (type == "Strip") {
    return std::make_unique<Strip>(string_member(json, "content", origin, " "),
                                   count_member(json, "start", origin),
                                   count_member(json, "stop", origin));
  }
  if (type == "Replace") {
    return std::make_unique<Replace>(pattern_member(json, "pattern", origin),
                                     string_member(json, "content", origin), origin);
  }
  if (type == "Sequence") {
    const Json* list = member(json, "decoders");
    RLAIF_CHECK(list != nullptr && list->IsArray(), origin, ": \"decoders\" must be a list");
    std::vector<std::unique_ptr<Decoder>> parts;
    for (const Json& p : list->GetArray()) parts.push_back(make_decoder(p, file));
    return std::make_unique<Sequence>(std::move(parts));
  }
  throw Error(origin, ": unsupported decoder type \"", type, "\"");
}

}  // namespace rlaif::hf
