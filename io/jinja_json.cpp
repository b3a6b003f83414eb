#include "io/jinja_json.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "io/json_depth.h"
#include "io/json_exact.h"
#include "runtime/error.h"

namespace rlaif::jinja {
namespace {

Value from_rapidjson(const rapidjson::Value& json) {
  if (json.IsNull()) return Value::none();
  if (json.IsBool()) return Value(json.GetBool());
  if (json.IsInt64()) return Value(static_cast<int64_t>(json.GetInt64()));
  if (json.IsUint64()) return Value(static_cast<double>(json.GetUint64()));
  if (json.IsNumber()) return Value(json.GetDouble());
  if (json.IsString()) return Value(std::string(json.GetString(), json.GetStringLength()));
  if (json.IsArray()) {
    List items;
    items.reserve(json.Size());
    for (const auto& item : json.GetArray()) items.push_back(from_rapidjson(item));
    return Value(std::move(items));
  }
  Dict dict;
  for (const auto& member : json.GetObject()) {
    dict.set(std::string(member.name.GetString(), member.name.GetStringLength()),
             from_rapidjson(member.value));
  }
  return Value(std::move(dict));
}

// Python's json string encoding; with ensure_ascii, non-ASCII code points become \uXXXX
// (UTF-16 surrogate pairs above U+FFFF).
void write_json_string(const std::string& s, bool ensure_ascii, std::string& out) {
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    char buf[16];
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || (ensure_ascii && c == 0x7f)) {
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else if (c >= 0x80 && ensure_ascii) {
          int extra = c < 0xe0 ? 1 : c < 0xf0 ? 2 : 3;
          uint32_t cp = c & (0x3f >> extra);
          for (int k = 0; k < extra && i + 1 < s.size(); ++k) {
            cp = (cp << 6) | (static_cast<unsigned char>(s[++i]) & 0x3f);
          }
          if (cp >= 0x10000) {
            cp -= 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xd800 + (cp >> 10),
                          0xdc00 + (cp & 0x3ff));
          } else {
            std::snprintf(buf, sizeof buf, "\\u%04x", cp);
          }
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

struct JsonWriter {
  const JsonFormat& format;
  std::string item_separator;

  void newline(int depth, std::string& out) const {
    out += '\n';
    for (int i = 0; i < depth; ++i) out += *format.indent;
  }

  void write(const Value& value, int depth, std::string& out) const {
    switch (value.kind()) {
      case Value::Kind::kNone:
        out += "null";
        return;
      case Value::Kind::kBool:
        out += value.as_bool() ? "true" : "false";
        return;
      case Value::Kind::kInt:
        out += std::to_string(value.as_int());
        return;
      case Value::Kind::kFloat: {
        double f = value.as_double();
        if (std::isnan(f)) {
          out += "NaN";
        } else if (std::isinf(f)) {
          out += f > 0 ? "Infinity" : "-Infinity";
        } else {
          out += python_float_repr(f);
        }
        return;
      }
      case Value::Kind::kString:
        write_json_string(value.as_string(), format.ensure_ascii, out);
        return;
      case Value::Kind::kList: {
        const List& items = value.as_list();
        if (items.empty()) {
          out += "[]";
          return;
        }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += item_separator;
          if (format.indent) newline(depth + 1, out);
          write(items[i], depth + 1, out);
        }
        if (format.indent) newline(depth, out);
        out += ']';
        return;
      }
      case Value::Kind::kDict: {
        const Dict& dict = value.as_dict();
        RLAIF_CHECK(!dict.is_namespace, "tojson: a namespace is not JSON serializable");
        if (dict.entries.empty()) {
          out += "{}";
          return;
        }
        std::vector<const std::pair<std::string, Value>*> entries;
        for (const auto& entry : dict.entries) entries.push_back(&entry);
        if (format.sort_keys) {
          std::stable_sort(entries.begin(), entries.end(),
                           [](const auto* a, const auto* b) { return a->first < b->first; });
        }
        out += '{';
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i) out += item_separator;
          if (format.indent) newline(depth + 1, out);
          write_json_string(entries[i]->first, format.ensure_ascii, out);
          out += format.key_separator;
          write(entries[i]->second, depth + 1, out);
        }
        if (format.indent) newline(depth, out);
        out += '}';
        return;
      }
      case Value::Kind::kUndefined:
        throw Error("tojson: Object of type Undefined is not JSON serializable (",
                    value.undefined_hint(), ")");
      case Value::Kind::kFunction:
        throw Error("tojson: Object of type function is not JSON serializable");
    }
  }
};

}  // namespace

Value value_from_json_text(std::string_view json, const std::string& what) {
  rapidjson::Document doc;
  const rapidjson::ParseResult parsed = parse_json_exact(doc, json);
  RLAIF_CHECK(!parsed.IsError(), what, ": invalid JSON at offset ", parsed.Offset(), ": ",
              rapidjson::GetParseError_En(parsed.Code()));
  RLAIF_CHECK(json_depth(doc) <= kMaxJsonDepth, what, ": JSON nested deeper than ", kMaxJsonDepth,
              " levels");
  return from_rapidjson(doc);
}

std::string value_to_json(const Value& value, const JsonFormat& format) {
  JsonWriter writer{format, format.item_separator ? *format.item_separator
                            : format.indent       ? ","
                                                  : ", "};
  std::string out;
  writer.write(value, 0, out);
  return out;
}

std::string value_to_json(const Value& value) {
  return value_to_json(value, JsonFormat{});
}

}  // namespace rlaif::jinja
