#include "io/jinja_filters.h"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <optional>

#include "io/jinja_json.h"
#include "io/jinja_methods.h"
#include "io/jinja_strings.h"
#include "runtime/error.h"

namespace rlaif::jinja {
namespace {

const char* const kFilters[] = {
    "abs",    "capitalize", "count",   "d",       "default", "first", "float",  "indent",
    "int",    "items",      "join",    "last",    "length",  "list",  "lower",  "map",
    "reject", "rejectattr", "replace", "reverse", "round",   "safe",  "select", "selectattr",
    "sort",   "string",     "sum",     "title",   "tojson",  "trim",  "unique", "upper"};

const char* const kTests[] = {
    "boolean",  "callable", "defined", "divisibleby", "eq",      "equalto", "escaped",
    "even",     "false",    "float",   "ge",          "gt",      "in",      "integer",
    "iterable", "le",       "lower",   "lt",          "mapping", "ne",      "none",
    "number",   "odd",      "sameas",  "sequence",    "string",  "true",    "undefined",
    "upper",    "==",       "!=",      "<",           "<=",      ">",       ">="};

// Argument `index` of a filter (after its input), by position or keyword, else `fallback`.
Value arg(const CallArgs& args, size_t index, const char* keyword, Value fallback) {
  if (index < args.positional.size()) return args.positional[index];
  for (const auto& [key, value] : args.keyword) {
    if (key == keyword) return value;
  }
  return fallback;
}

// Resolves "a.b.0" paths as jinja2's make_attrgetter does.
Value attribute_path(const Value& item, const std::string& path) {
  Value current = item;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    RLAIF_CHECK(!numeric || part.size() <= 18, "attribute '", path, "': index ", part,
                " is out of range");
    current = numeric ? get_item(current, Value(static_cast<int64_t>(std::stoll(part))))
                      : get_item(current, Value(part));
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

int64_t length_of(const Value& v) {
  if (v.is_undefined()) return 0;
  if (v.is_string()) return static_cast<int64_t>(code_point_count(v.as_string()));
  if (v.is_list()) return static_cast<int64_t>(v.as_list().size());
  if (v.is_dict()) return static_cast<int64_t>(v.as_dict().entries.size());
  throw Error("object of type '", v.type_name(), "' has no len()");
}

// The key jinja2 sorts and deduplicates by: strings lower-cased unless case_sensitive.
Value comparison_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(ascii_lower(v.as_string()));
  return v;
}

// Arguments after the first `skip` positional ones, for select/map style pass-through.
CallArgs rest_args(const CallArgs& args, size_t skip) {
  CallArgs rest;
  for (size_t i = skip; i < args.positional.size(); ++i)
    rest.positional.push_back(args.positional[i]);
  return rest;
}

Value select_items(const Value& input, const CallArgs& args, bool by_attribute, bool keep) {
  std::string attribute;
  size_t first_test_arg = 0;
  if (by_attribute) {
    RLAIF_CHECK(!args.positional.empty() && args.positional[0].is_string(),
                "needs the attribute name");
    attribute = args.positional[0].as_string();
    first_test_arg = 1;
  }
  std::string test;
  if (args.positional.size() > first_test_arg) {
    RLAIF_CHECK(args.positional[first_test_arg].is_string(), "the test name must be a string");
    test = args.positional[first_test_arg].as_string();
    RLAIF_CHECK(is_known_test(test), "unsupported test '", test, "'");
  }
  CallArgs test_args = rest_args(args, first_test_arg + 1);
  List out;
  for (const Value& item : iterate(input)) {
    Value subject = by_attribute ? attribute_path(item, attribute) : item;
    bool passed = test.empty() ? subject.truthy() : apply_test(test, subject, test_args);
    if (passed == keep) out.push_back(item);
  }
  return Value(std::move(out));
}

std::string indent_text(const std::string& s, const Value& width, bool first, bool blank) {
  std::string unit = width.is_string() ? width.as_string() : std::string(width.as_int(), ' ');
  std::vector<std::string> lines;
  std::string text = s + "\n";
  size_t start = 0;
  for (size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  std::string out = lines[0];
  for (size_t i = 1; i < lines.size(); ++i) {
    out += "\n";
    if (blank || !lines[i].empty()) out += unit;
    out += lines[i];
  }
  if (first) out = unit + out;
  return out;
}

// Python's int() of a float, where the result fits int64 (rlaif's integers); beyond it, and for
// inf and nan, an Error rather than an undefined conversion.
int64_t truncate_to_int(double f) {
  RLAIF_CHECK(f >= -0x1p63 && f < 0x1p63, "int: ", f, " does not fit in a 64-bit integer");
  return static_cast<int64_t>(std::trunc(f));
}

Value to_int(const Value& input, const Value& fallback) {
  if (input.is_number()) {
    return input.is_float() ? Value(truncate_to_int(input.as_double())) : Value(input.as_int());
  }
  if (input.is_string()) {
    std::string s = python_strip(input.as_string(), std::nullopt, true, true);
    std::optional<double> whole_float;
    try {
      size_t used = 0;
      int64_t i = std::stoll(s, &used);
      if (used == s.size()) return Value(i);
    } catch (const std::exception&) {
    }
    try {
      size_t used = 0;
      double f = std::stod(s, &used);
      if (used == s.size()) whole_float = f;
    } catch (const std::exception&) {
    }
    if (whole_float) return Value(truncate_to_int(*whole_float));
  }
  return fallback;
}

Value to_float(const Value& input, const Value& fallback) {
  if (input.is_number()) return Value(input.as_double());
  if (input.is_string()) {
    std::string s = python_strip(input.as_string(), std::nullopt, true, true);
    try {
      size_t used = 0;
      double f = std::stod(s, &used);
      if (used == s.size()) return Value(f);
    } catch (const std::exception&) {
    }
  }
  return fallback;
}

Value filter(const std::string& name, const Value& input, const CallArgs& args) {
  if (name == "abs") {
    RLAIF_CHECK(input.is_number(), "bad operand type for abs(): '", input.type_name(), "'");
    return input.is_float()
               ? Value(std::fabs(input.as_double()))
               : Value(input.as_int() < 0 ? wrapping_neg(input.as_int()) : input.as_int());
  }
  if (name == "capitalize") return Value(python_capitalize(input.str()));
  if (name == "count" || name == "length") return Value(length_of(input));
  if (name == "d" || name == "default") {
    bool boolean = arg(args, 1, "boolean", Value(false)).truthy();
    if (input.is_undefined() || (boolean && !input.truthy())) {
      return arg(args, 0, "default_value", Value(""));
    }
    return input;
  }
  if (name == "first") {
    List items = iterate(input);
    return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
  }
  if (name == "last") {
    List items = iterate(input);
    return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
  }
  if (name == "float") return to_float(input, arg(args, 0, "default", Value(0.0)));
  if (name == "int") return to_int(input, arg(args, 0, "default", Value(0)));
  if (name == "indent") {
    return Value(indent_text(input.str(), arg(args, 0, "width", Value(4)),
                             arg(args, 1, "first", Value(false)).truthy(),
                             arg(args, 2, "blank", Value(false)).truthy()));
  }
  if (name == "items") {
    if (input.is_undefined()) return Value(List{});
    RLAIF_CHECK(input.is_dict(), "can only get item pairs from a mapping, not ", input.type_name());
    List out;
    for (const auto& [key, value] : input.as_dict().entries) {
      out.emplace_back(List{Value(key), value}, true);
    }
    return Value(std::move(out));
  }
  if (name == "join") {
    std::string separator = arg(args, 0, "d", Value("")).str();
    Value attribute = arg(args, 1, "attribute", Value::none());
    std::string out;
    bool first = true;
    for (const Value& item : iterate(input)) {
      if (!first) out += separator;
      first = false;
      out += (attribute.is_none() ? item : attribute_path(item, attribute.str())).str();
    }
    return Value(std::move(out));
  }
  if (name == "list") return Value(iterate(input));
  if (name == "lower") return Value(ascii_lower(input.str()));
  if (name == "upper") return Value(ascii_upper(input.str()));
  if (name == "title") return Value(python_title(input.str()));
  if (name == "string" || name == "safe") return Value(input.str());
  if (name == "trim") {
    Value chars = arg(args, 0, "chars", Value::none());
    return Value(python_strip(
        input.str(), chars.is_none() ? std::nullopt : std::optional(chars.str()), true, true));
  }
  if (name == "replace") {
    RLAIF_CHECK(args.positional.size() >= 2, "needs the old and the new text");
    Value count = arg(args, 2, "count", Value::none());
    return Value(python_replace(input.str(), args.positional[0].str(), args.positional[1].str(),
                                count.is_none() ? -1 : count.as_int()));
  }
  if (name == "map") {
    Value attribute = arg(args, 99, "attribute", Value());
    List out;
    if (!attribute.is_undefined()) {
      Value fallback = arg(args, 99, "default", Value());
      for (const Value& item : iterate(input)) {
        Value v = attribute_path(item, attribute.str());
        out.push_back(v.is_undefined() && !fallback.is_undefined() ? fallback : v);
      }
      return Value(std::move(out));
    }
    RLAIF_CHECK(!args.positional.empty() && args.positional[0].is_string(),
                "needs a filter name or attribute=");
    const std::string& inner = args.positional[0].as_string();
    RLAIF_CHECK(is_known_filter(inner), "unsupported filter '", inner, "'");
    CallArgs inner_args = rest_args(args, 1);
    for (const Value& item : iterate(input)) out.push_back(apply_filter(inner, item, inner_args));
    return Value(std::move(out));
  }
  if (name == "select" || name == "reject")
    return select_items(input, args, false, name == "select");
  if (name == "selectattr" || name == "rejectattr") {
    return select_items(input, args, true, name == "selectattr");
  }
  if (name == "reverse") {
    if (input.is_string()) {
      Value step(-1);
      return get_slice(input, nullptr, nullptr, &step);
    }
    List items = iterate(input);
    std::reverse(items.begin(), items.end());
    return Value(std::move(items));
  }
  if (name == "round") {
    int64_t precision = arg(args, 0, "precision", Value(0)).as_int();
    std::string method = arg(args, 1, "method", Value("common")).str();
    double scale = std::pow(10.0, static_cast<double>(precision));
    double x = input.as_double() * scale;
    double r = method == "floor"  ? std::floor(x)
               : method == "ceil" ? std::ceil(x)
                                  : std::nearbyint(x);
    return Value(r / scale);
  }
  if (name == "sort") {
    bool reverse = arg(args, 0, "reverse", Value(false)).truthy();
    bool case_sensitive = arg(args, 1, "case_sensitive", Value(false)).truthy();
    Value attribute = arg(args, 2, "attribute", Value::none());
    List items = iterate(input);
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
      Value ka = comparison_key(attribute.is_none() ? a : attribute_path(a, attribute.str()),
                                case_sensitive);
      Value kb = comparison_key(attribute.is_none() ? b : attribute_path(b, attribute.str()),
                                case_sensitive);
      return reverse ? value_less(kb, ka) : value_less(ka, kb);
    });
    return Value(std::move(items));
  }
  if (name == "sum") {
    Value attribute = arg(args, 0, "attribute", Value::none());
    Value total = arg(args, 1, "start", Value(0));
    for (const Value& item : iterate(input)) {
      Value v = attribute.is_none() ? item : attribute_path(item, attribute.str());
      RLAIF_CHECK(v.is_number() && total.is_number(), "can only add numbers");
      total = total.is_float() || v.is_float() ? Value(total.as_double() + v.as_double())
                                               : Value(wrapping_add(total.as_int(), v.as_int()));
    }
    return total;
  }
  if (name == "tojson") {
    // Hugging Face's signature: tojson(x, ensure_ascii=False, indent=None, separators=None,
    // sort_keys=False).
    JsonFormat format;
    format.ensure_ascii = arg(args, 0, "ensure_ascii", Value(false)).truthy();
    Value indent = arg(args, 1, "indent", Value::none());
    if (indent.is_string()) {
      format.indent = indent.as_string();
    } else if (!indent.is_none()) {
      RLAIF_CHECK(indent.is_int(), "indent must be an int or a string");
      format.indent = std::string(std::max<int64_t>(indent.as_int(), 0), ' ');
    }
    Value separators = arg(args, 2, "separators", Value::none());
    if (!separators.is_none()) {
      RLAIF_CHECK(separators.is_list() && separators.as_list().size() == 2 &&
                      separators.as_list()[0].is_string() && separators.as_list()[1].is_string(),
                  "separators must be a pair of strings");
      format.item_separator = separators.as_list()[0].as_string();
      format.key_separator = separators.as_list()[1].as_string();
    }
    format.sort_keys = arg(args, 3, "sort_keys", Value(false)).truthy();
    return Value(value_to_json(input, format));
  }
  if (name == "unique") {
    bool case_sensitive = arg(args, 0, "case_sensitive", Value(false)).truthy();
    Value attribute = arg(args, 1, "attribute", Value::none());
    List out, seen;
    for (const Value& item : iterate(input)) {
      Value key = comparison_key(attribute.is_none() ? item : attribute_path(item, attribute.str()),
                                 case_sensitive);
      bool dup = std::any_of(seen.begin(), seen.end(),
                             [&](const Value& s) { return values_equal(s, key); });
      if (!dup) {
        seen.push_back(key);
        out.push_back(item);
      }
    }
    return Value(std::move(out));
  }
  throw Error("unsupported filter");
}

bool test(const std::string& name, const Value& v, const CallArgs& args) {
  auto operand = [&]() -> const Value& {
    RLAIF_CHECK(!args.positional.empty(), "needs an argument");
    return args.positional[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
  if (name == "sequence") return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
  if (name == "callable") return v.is_function();
  if (name == "escaped") return false;
  if (name == "lower") return v.is_string() && ascii_lower(v.as_string()) == v.as_string();
  if (name == "upper") return v.is_string() && ascii_upper(v.as_string()) == v.as_string();
  if (name == "odd" || name == "even" || name == "divisibleby") {
    RLAIF_CHECK(v.is_int() || v.is_bool(), "needs an integer, not ", v.type_name());
    int64_t divisor = name == "divisibleby" ? operand().as_int() : 2;
    RLAIF_CHECK(divisor != 0, "division by zero");
    int64_t remainder = ((v.as_int() % divisor) + divisor) % divisor;
    return name == "odd" ? remainder == 1 : remainder == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return values_equal(v, operand());
  if (name == "ne" || name == "!=") return !values_equal(v, operand());
  if (name == "lt" || name == "<") return value_less(v, operand());
  if (name == "le" || name == "<=") return !value_less(operand(), v);
  if (name == "gt" || name == ">") return value_less(operand(), v);
  if (name == "ge" || name == ">=") return !value_less(v, operand());
  if (name == "sameas") {
    const Value& other = operand();
    if (v.kind() != other.kind()) return false;
    if (v.is_none() || v.is_undefined()) return true;
    if (v.is_bool()) return v.as_bool() == other.as_bool();
    return values_equal(v, other) && (v.is_int() || v.is_string());
  }
  if (name == "in") {
    const Value& container = operand();
    if (container.is_string()) {
      RLAIF_CHECK(v.is_string(), "'in <string>' requires string as left operand, not ",
                  v.type_name());
      return container.as_string().find(v.as_string()) != std::string::npos;
    }
    if (container.is_dict()) return v.is_string() && container.as_dict().find(v.as_string());
    for (const Value& item : iterate(container)) {
      if (values_equal(item, v)) return true;
    }
    return false;
  }
  throw Error("unsupported test");
}

}  // namespace

bool is_known_filter(std::string_view name) {
  return std::find(std::begin(kFilters), std::end(kFilters), name) != std::end(kFilters);
}

bool is_known_test(std::string_view name) {
  return std::find(std::begin(kTests), std::end(kTests), name) != std::end(kTests);
}

Value apply_filter(const std::string& name, const Value& input, const CallArgs& args) {
  try {
    return filter(name, input, args);
  } catch (const Error& e) {
    throw Error("filter '", name, "': ", e.what());
  }
}

bool apply_test(const std::string& name, const Value& value, const CallArgs& args) {
  try {
    return test(name, value, args);
  } catch (const Error& e) {
    throw Error("test '", name, "': ", e.what());
  }
}

}  // namespace rlaif::jinja
