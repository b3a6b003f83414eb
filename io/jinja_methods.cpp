#include "io/jinja_methods.h"

#include <memory>

#include "io/jinja_strings.h"
#include "runtime/error.h"

namespace rlaif::jinja {
namespace {

Value arg(const CallArgs& args, size_t index, const char* keyword, const Value& fallback) {
  if (index < args.positional.size()) return args.positional[index];
  for (const auto& [key, value] : args.keyword) {
    if (key == keyword) return value;
  }
  return fallback;
}

void check_arg_count(const CallArgs& args, size_t most, const std::string& method) {
  RLAIF_CHECK(args.positional.size() + args.keyword.size() <= most, method, "() takes at most ",
              most, " argument(s), got ", args.positional.size() + args.keyword.size());
}

std::optional<std::string> optional_string(const Value& v, const std::string& method) {
  if (v.is_undefined() || v.is_none()) return std::nullopt;
  RLAIF_CHECK(v.is_string(), method, "() argument must be str or None, not ", v.type_name());
  return v.as_string();
}

Value bound(const std::string& name, std::function<Value(const CallArgs&)> body) {
  auto f = std::make_shared<Function>();
  f->name = name;
  f->call = std::move(body);
  f->is_builtin = true;
  return Value(std::move(f));
}

bool affix_matches(const std::string& s, const Value& affix, bool at_start,
                   const std::string& method) {
  if (affix.is_list()) {
    for (const Value& item : affix.as_list()) {
      if (affix_matches(s, item, at_start, method)) return true;
    }
    return false;
  }
  RLAIF_CHECK(affix.is_string(), method, "() argument must be str or a tuple of str, not ",
              affix.type_name());
  const std::string& a = affix.as_string();
  if (a.size() > s.size()) return false;
  return at_start ? s.compare(0, a.size(), a) == 0
                  : s.compare(s.size() - a.size(), a.size(), a) == 0;
}

// str.format with automatic "{}" or numbered "{0}" fields and "{{"/"}}" escapes.
std::string python_format(const std::string& pattern, const CallArgs& args) {
  std::string out;
  size_t next_auto = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if ((c == '{' || c == '}') && i + 1 < pattern.size() && pattern[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    size_t close = pattern.find('}', i);
    RLAIF_CHECK(close != std::string::npos, "str.format: unmatched '{'");
    std::string field = pattern.substr(i + 1, close - i - 1);
    const Value* v = nullptr;
    if (field.empty()) {
      RLAIF_CHECK(next_auto < args.positional.size(), "str.format: too few arguments");
      v = &args.positional[next_auto++];
    } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
      RLAIF_CHECK(field.size() <= 18, "str.format: no argument ", field);
      size_t index = std::stoul(field);
      RLAIF_CHECK(index < args.positional.size(), "str.format: no argument ", index);
      v = &args.positional[index];
    } else {
      for (const auto& [key, value] : args.keyword) {
        if (key == field) v = &value;
      }
      RLAIF_CHECK(v != nullptr, "str.format: unsupported or missing field {", field, "}");
    }
    out += v->str();
    i = close;
  }
  return out;
}

Value string_method(const std::string& s, const std::string& name) {
  static const Value kNone = Value::none();
  static const Value kMissing;
  if (name == "startswith" || name == "endswith") {
    return bound(name, [s, name](const CallArgs& a) {
      RLAIF_CHECK(a.positional.size() == 1, name, "() takes exactly one argument");
      return Value(affix_matches(s, a.positional[0], name == "startswith", name));
    });
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    return bound(name, [s, name](const CallArgs& a) {
      check_arg_count(a, 1, name);
      return Value(python_strip(s, optional_string(arg(a, 0, "chars", kNone), name),
                                name != "rstrip", name != "lstrip"));
    });
  }
  if (name == "split") {
    return bound(name, [s](const CallArgs& a) {
      check_arg_count(a, 2, "split");
      Value maxsplit = arg(a, 1, "maxsplit", Value(-1));
      RLAIF_CHECK(maxsplit.is_int(), "split() maxsplit must be an int");
      List parts;
      for (auto& part :
           python_split(s, optional_string(arg(a, 0, "sep", kNone), "split"), maxsplit.as_int())) {
        parts.emplace_back(std::move(part));
      }
      return Value(std::move(parts));
    });
  }
  if (name == "upper") return bound(name, [s](const CallArgs&) { return Value(ascii_upper(s)); });
  if (name == "lower") return bound(name, [s](const CallArgs&) { return Value(ascii_lower(s)); });
  if (name == "title") return bound(name, [s](const CallArgs&) { return Value(python_title(s)); });
  if (name == "capitalize") {
    return bound(name, [s](const CallArgs&) { return Value(python_capitalize(s)); });
  }
  if (name == "replace") {
    return bound(name, [s](const CallArgs& a) {
      RLAIF_CHECK(a.positional.size() >= 2 && a.positional.size() <= 3 &&
                      a.positional[0].is_string() && a.positional[1].is_string(),
                  "replace() takes two strings and an optional count");
      int64_t count = a.positional.size() == 3 ? a.positional[2].as_int() : -1;
      return Value(
          python_replace(s, a.positional[0].as_string(), a.positional[1].as_string(), count));
    });
  }
  if (name == "join") {
    return bound(name, [s](const CallArgs& a) {
      RLAIF_CHECK(a.positional.size() == 1, "join() takes exactly one argument");
      std::string out;
      bool first = true;
      for (const Value& item : iterate(a.positional[0])) {
        RLAIF_CHECK(item.is_string(), "join(): sequence item is ", item.type_name(),
                    ", expected str");
        if (!first) out += s;
        first = false;
        out += item.as_string();
      }
      return Value(std::move(out));
    });
  }
  if (name == "find" || name == "count") {
    return bound(name, [s, name](const CallArgs& a) {
      RLAIF_CHECK(a.positional.size() == 1 && a.positional[0].is_string(), name,
                  "() takes one string argument");
      const std::string& needle = a.positional[0].as_string();
      if (name == "find") {
        size_t hit = s.find(needle);
        return Value(hit == std::string::npos ? int64_t{-1}
                                              : static_cast<int64_t>(code_point_count(
                                                    std::string_view(s).substr(0, hit))));
      }
      if (needle.empty()) return Value(static_cast<int64_t>(code_point_count(s) + 1));
      int64_t count = 0;
      for (size_t p = s.find(needle); p != std::string::npos;
           p = s.find(needle, p + needle.size())) {
        ++count;
      }
      return Value(count);
    });
  }
  if (name == "format") {
    return bound(name, [s](const CallArgs& a) { return Value(python_format(s, a)); });
  }
  return Value::undefined("'str object' has no attribute '" + name + "'");
}

Value dict_method(const Value& self, const std::string& name) {
  if (name == "items" || name == "keys" || name == "values") {
    return bound(name, [self, name](const CallArgs& a) {
      RLAIF_CHECK(a.positional.empty() && a.keyword.empty(), name, "() takes no arguments");
      List out;
      for (const auto& [key, value] : self.as_dict().entries) {
        if (name == "items") {
          out.emplace_back(List{Value(key), value}, true);
        } else {
          out.push_back(name == "keys" ? Value(key) : value);
        }
      }
      return Value(std::move(out));
    });
  }
  if (name == "get") {
    return bound(name, [self](const CallArgs& a) {
      RLAIF_CHECK(!a.positional.empty() && a.positional.size() <= 2,
                  "get() takes a key and an optional default");
      if (a.positional[0].is_string()) {
        if (const Value* v = self.as_dict().find(a.positional[0].as_string())) return *v;
      }
      return a.positional.size() == 2 ? a.positional[1] : Value::none();
    });
  }
  return Value();  // not a method
}

int64_t normalize_index(int64_t index, int64_t size) {
  return index < 0 ? index + size : index;
}

}  // namespace

Value get_attribute(const Value& object, const std::string& name) {
  if (object.is_string()) return string_method(object.as_string(), name);
  if (object.is_dict()) {
    if (!object.as_dict().is_namespace) {
      Value method = dict_method(object, name);
      if (!method.is_undefined()) return method;
    }
    if (const Value* v = object.as_dict().find(name)) return *v;
    return Value::undefined("'dict object' has no attribute '" + name + "'");
  }
  return Value::undefined(
      Error::concat("'", object.type_name(), " object' has no attribute '", name, "'"));
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_dict()) {
    if (key.is_string()) {
      if (const Value* v = object.as_dict().find(key.as_string())) return *v;
      Value method = dict_method(object, key.as_string());
      if (!method.is_undefined()) return method;
    }
    return Value::undefined("'dict object' has no attribute " + key.repr());
  }
  if ((object.is_list() || object.is_string()) && key.is_number() && !key.is_float()) {
    if (object.is_list()) {
      const List& items = object.as_list();
      int64_t i = normalize_index(key.as_int(), static_cast<int64_t>(items.size()));
      if (i >= 0 && i < static_cast<int64_t>(items.size())) return items[i];
      return Value::undefined(object.type_name() + " object has no element " + key.repr());
    }
    const std::string& s = object.as_string();
    std::vector<size_t> starts = code_point_starts(s);
    int64_t count = static_cast<int64_t>(starts.size()) - 1;
    int64_t i = normalize_index(key.as_int(), count);
    if (i >= 0 && i < count) return Value(s.substr(starts[i], starts[i + 1] - starts[i]));
    return Value::undefined("str object has no element " + key.repr());
  }
  if (key.is_string()) return get_attribute(object, key.as_string());
  return Value::undefined(
      Error::concat("'", object.type_name(), " object' has no attribute ", key.repr()));
}

Value get_slice(const Value& object, const Value* start, const Value* stop, const Value* step) {
  auto bound_or = [](const Value* v, const char* what) -> std::optional<int64_t> {
    if (v == nullptr || v->is_none()) return std::nullopt;
    RLAIF_CHECK(v->is_int() || v->is_bool(), "slice ", what, " must be an int, not ",
                v->type_name());
    return v->as_int();
  };
  int64_t step_value = bound_or(step, "step").value_or(1);
  RLAIF_CHECK(step_value != 0, "slice step cannot be zero");
  std::vector<size_t> starts;
  int64_t size;
  if (object.is_list()) {
    size = static_cast<int64_t>(object.as_list().size());
  } else if (object.is_string()) {
    starts = code_point_starts(object.as_string());
    size = static_cast<int64_t>(starts.size()) - 1;
  } else {
    throw Error("cannot slice a ", object.type_name());
  }
  // Python's slice.indices().
  auto clamp = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t i = *v < 0 ? *v + size : *v;
    if (step_value > 0) return std::clamp<int64_t>(i, 0, size);
    return std::clamp<int64_t>(i, -1, size - 1);
  };
  int64_t begin = clamp(bound_or(start, "start"), step_value > 0 ? 0 : size - 1);
  int64_t end = clamp(bound_or(stop, "stop"), step_value > 0 ? size : -1);
  std::vector<int64_t> picked;
  for (int64_t i = begin; step_value > 0 ? i < end : i > end; i += step_value) picked.push_back(i);
  if (object.is_list()) {
    List out;
    for (int64_t i : picked) out.push_back(object.as_list()[i]);
    return Value(std::move(out), object.is_tuple());
  }
  std::string out;
  const std::string& s = object.as_string();
  for (int64_t i : picked) out += s.substr(starts[i], starts[i + 1] - starts[i]);
  return Value(std::move(out));
}

List iterate(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kList:
      return value.as_list();
    case Value::Kind::kDict: {
      List keys;
      for (const auto& entry : value.as_dict().entries) keys.emplace_back(entry.first);
      return keys;
    }
    case Value::Kind::kString: {
      List chars;
      const std::string& s = value.as_string();
      std::vector<size_t> starts = code_point_starts(s);
      for (size_t i = 0; i + 1 < starts.size(); ++i) {
        chars.emplace_back(s.substr(starts[i], starts[i + 1] - starts[i]));
      }
      return chars;
    }
    default:
      throw Error("'", value.type_name(), "' object is not iterable");
  }
}

}  // namespace rlaif::jinja
