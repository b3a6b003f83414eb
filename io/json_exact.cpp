#include "io/json_exact.h"

#include <rapidjson/encodedstream.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <charconv>
#include <cstdlib>

namespace rlaif {
namespace {

// Forwards RapidJSON's parse events to a Document, converting numbers from their text.
struct ExactNumbers {
  rapidjson::Document& doc;

  bool Null() { return doc.Null(); }
  bool Bool(bool b) { return doc.Bool(b); }
  bool Int(int i) { return doc.Int(i); }
  bool Uint(unsigned u) { return doc.Uint(u); }
  bool Int64(int64_t i) { return doc.Int64(i); }
  bool Uint64(uint64_t u) { return doc.Uint64(u); }
  bool Double(double d) { return doc.Double(d); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return doc.String(s, n, copy); }
  bool StartObject() { return doc.StartObject(); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return doc.Key(s, n, copy); }
  bool EndObject(rapidjson::SizeType members) { return doc.EndObject(members); }
  bool StartArray() { return doc.StartArray(); }
  bool EndArray(rapidjson::SizeType elements) { return doc.EndArray(elements); }

  // `text` is a valid JSON number (the reader checked its grammar), NUL-terminated.
  bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
    const char* end = text + length;
    if (std::string_view(text, length).find_first_of(".eE") == std::string_view::npos) {
      // An integer: the narrowest RapidJSON type holding it, as its reader would choose.
      if (text[0] == '-') {
        int64_t i = 0;
        if (std::from_chars(text, end, i).ec == std::errc()) return doc.Int64(i);
      } else {
        uint64_t u = 0;
        if (std::from_chars(text, end, u).ec == std::errc()) return doc.Uint64(u);
      }
    }
    double d = 0;
    if (std::from_chars(text, end, d).ec == std::errc()) return doc.Double(d);
    // Past double's range: strtod gives ±HUGE_VAL or the underflowed value, as RapidJSON does.
    return doc.Double(std::strtod(text, nullptr));
  }
};

}  // namespace

rapidjson::ParseResult parse_json_exact(rapidjson::Document& doc, std::string_view text) {
  rapidjson::ParseResult result;
  auto generate = [&](rapidjson::Document& target) {
    rapidjson::MemoryStream bytes(text.data(), text.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(bytes);
    rapidjson::Reader reader;
    ExactNumbers handler{target};
    result = reader.Parse<rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseIterativeFlag>(
        in, handler);
    return !result.IsError();
  };
  doc.Populate(generate);
  return result;
}

}  // namespace rlaif
