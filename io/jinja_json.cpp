#include "io/jinja_json.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

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

void write_json_string(const std::string& s, std::string& out) {
  out += '"';
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
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
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

struct JsonWriter {
  int indent;
  bool sort_keys;
  std::string unit;  // one level of indentation

  void newline(int depth, std::string& out) const {
    out += '\n';
    for (int i = 0; i < depth; ++i) out += unit;
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
        write_json_string(value.as_string(), out);
        return;
      case Value::Kind::kList: {
        const List& items = value.as_list();
        if (items.empty()) {
          out += "[]";
          return;
        }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += indent >= 0 ? "," : ", ";
          if (indent >= 0) newline(depth + 1, out);
          write(items[i], depth + 1, out);
        }
        if (indent >= 0) newline(depth, out);
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
        if (sort_keys) {
          std::stable_sort(entries.begin(), entries.end(),
                           [](const auto* a, const auto* b) { return a->first < b->first; });
        }
        out += '{';
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i) out += indent >= 0 ? "," : ", ";
          if (indent >= 0) newline(depth + 1, out);
          write_json_string(entries[i]->first, out);
          out += ": ";
          write(entries[i]->second, depth + 1, out);
        }
        if (indent >= 0) newline(depth, out);
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
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(json.data(), json.size());
  RLAIF_CHECK(!doc.HasParseError(), what, ": invalid JSON at offset ", doc.GetErrorOffset(), ": ",
              rapidjson::GetParseError_En(doc.GetParseError()));
  return from_rapidjson(doc);
}

std::string value_to_json(const Value& value, int indent, bool sort_keys,
                          const std::string& indent_text) {
  JsonWriter writer{indent, sort_keys,
                    indent_text.empty() ? std::string(std::max(indent, 0), ' ') : indent_text};
  if (!indent_text.empty()) writer.indent = std::max(indent, 0);
  std::string out;
  writer.write(value, 0, out);
  return out;
}

}  // namespace rlaif::jinja
