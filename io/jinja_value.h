// The values a Jinja template computes with, modelled on the Python objects that jinja2 hands to
// a Hugging Face chat template: None, bool, int, float, str, list, dict, callables, and jinja2's
// Undefined (what a missing variable or key evaluates to).
//
// Templates depend on Python's semantics in small ways that decide the rendered bytes, so those
// are reproduced exactly: str() of a float is Python's shortest repr ("1.0", "1e+16"), None
// prints "None", booleans "True"/"False", lists and dicts print as Python's repr, truthiness is
// Python's (empty containers and strings are false), and 1 == 1.0 == True. Strings are UTF-8;
// their length, indices and slices count code points, as Python's do.
//
// Lists and dicts are shared by reference, as in Python. Dicts keep insertion order and have
// string keys only (the JSON that messages come from has no other kind). A dict flagged as a
// namespace is the one object a template may change after creating it ({% set ns.x = ... %}).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rlaif::jinja {

class Value;
using List = std::vector<Value>;
struct Dict;
struct Function;

// The arguments of one call: f(a, b, key=c).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunction };

  // Undefined; `hint` says what was looked up, for error messages ("'foo' is undefined").
  Value() = default;
  static Value undefined(std::string hint);
  static Value none();
  Value(bool b);
  Value(int i);
  Value(int64_t i);
  Value(double f);
  Value(std::string s);
  Value(std::string_view s);
  Value(const char* s);
  Value(List items, bool is_tuple = false);
  Value(Dict dict);
  Value(std::shared_ptr<Function> function);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  // int, float or bool (Python's bool is an int).
  bool is_number() const;
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kList && is_tuple_; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_function() const { return kind_ == Kind::kFunction; }

  bool as_bool() const { return bool_; }
  int64_t as_int() const;    // int or bool
  double as_double() const;  // int, float or bool
  const std::string& as_string() const { return string_; }
  const List& as_list() const { return *list_; }
  const Dict& as_dict() const { return *dict_; }
  Dict& mutable_dict() const { return *dict_; }
  const Function& as_function() const { return *function_; }
  const std::string& undefined_hint() const { return string_; }

  // Python's bool(x); Undefined is false.
  bool truthy() const;
  // Python's str(x) (what {{ x }} prints); Undefined prints as "".
  std::string str() const;
  // Python's repr(x) (how a value prints inside a list or dict).
  std::string repr() const;
  // Python's type name, for error messages: "int", "str", "dict", "NoneType", "undefined".
  std::string type_name() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool bool_ = false;
  bool is_tuple_ = false;
  int64_t int_ = 0;
  double float_ = 0;
  std::string string_;  // the string, or the hint of an Undefined
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<Function> function_;
};

struct Dict {
  std::vector<std::pair<std::string, Value>> entries;
  bool is_namespace = false;

  // The value under `key`, or nullptr.
  const Value* find(std::string_view key) const;
  // Replaces the value under `key`, or appends it.
  void set(const std::string& key, Value value);
};

// A callable: a global such as range(), a bound method such as "a".startswith, or a macro.
struct Function {
  std::string name;
  std::function<Value(const CallArgs&)> call;
  // Built-ins (methods, range, namespace, dict) get the template line added to their errors;
  // macros and callables from the context report their own.
  bool is_builtin = false;
};

// Python's ==: numbers by value across int/float/bool, containers element by element, dicts
// regardless of order; Undefined equals only Undefined.
bool values_equal(const Value& a, const Value& b);
// Python's <, for numbers, strings and lists; throws Error naming both types otherwise.
bool value_less(const Value& a, const Value& b);
// Python's repr of a float: the shortest digits that round-trip, "1.0", "1e+16", "1.5e-05".
std::string python_float_repr(double f);

// Templates' integer arithmetic wraps past 64 bits (Python's integers are unbounded, rlaif's are
// int64): computed in uint64, where wrapping is defined, never as an int64 overflow.
inline int64_t wrapping_add(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
inline int64_t wrapping_sub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
inline int64_t wrapping_mul(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}
inline int64_t wrapping_neg(int64_t a) {
  return wrapping_sub(0, a);
}

}  // namespace rlaif::jinja
