#include "io/jinja_interpreter.h"

#include <cmath>
#include <memory>
#include <unordered_map>

#include "io/jinja_filters.h"
#include "io/jinja_methods.h"
#include "runtime/error.h"

namespace rlaif::jinja {
namespace {

struct Scope {
  std::shared_ptr<Scope> parent;
  std::unordered_map<std::string, Value> vars;
};
using ScopePtr = std::shared_ptr<Scope>;

enum class Flow { kNormal, kBreak, kContinue };

Value make_function(std::string name, std::function<Value(const CallArgs&)> body,
                    bool builtin = true) {
  auto f = std::make_shared<Function>();
  f->name = std::move(name);
  f->call = std::move(body);
  f->is_builtin = builtin;
  return Value(std::move(f));
}

Value builtin_range(const CallArgs& args) {
  RLAIF_CHECK(args.keyword.empty() && !args.positional.empty() && args.positional.size() <= 3,
              "range() takes 1 to 3 integer arguments");
  for (const Value& v : args.positional) {
    RLAIF_CHECK(v.is_int() || v.is_bool(), "range(): '", v.type_name(),
                "' object cannot be interpreted as an integer");
  }
  int64_t start = 0, stop, step = 1;
  if (args.positional.size() == 1) {
    stop = args.positional[0].as_int();
  } else {
    start = args.positional[0].as_int();
    stop = args.positional[1].as_int();
    if (args.positional.size() == 3) step = args.positional[2].as_int();
  }
  RLAIF_CHECK(step != 0, "range() arg 3 must not be zero");
  List out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    out.emplace_back(i);
    RLAIF_CHECK(out.size() <= 1000000, "range() is too long");
  }
  return Value(std::move(out));
}

Value builtin_dict(const CallArgs& args, bool as_namespace) {
  Dict dict;
  dict.is_namespace = as_namespace;
  for (const Value& v : args.positional) {
    RLAIF_CHECK(v.is_dict(), as_namespace ? "namespace" : "dict",
                "() takes only a mapping as a positional argument");
    for (const auto& [key, value] : v.as_dict().entries) dict.set(key, value);
  }
  for (const auto& [key, value] : args.keyword) dict.set(key, value);
  return Value(std::move(dict));
}

class Interpreter {
 public:
  Interpreter(const Dict& context, const RenderLimits& limits)
      : limits_(limits), root_(std::make_shared<Scope>()) {
    for (const auto& [key, value] : context.entries) root_->vars[key] = value;
  }
  // A namespace may come to hold itself ({% set ns.me = ns %}); emptying every namespace the
  // render created breaks such cycles.
  ~Interpreter() {
    for (Value& ns : namespaces_) ns.mutable_dict().entries.clear();
  }
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  std::string render(const Body& body) {
    std::string out;
    Flow flow = exec_body(body, root_, out);
    RLAIF_CHECK(flow == Flow::kNormal, "jinja: {% break %} or {% continue %} outside a loop");
    return out;
  }

 private:
  [[noreturn]] static void fail(int line, const std::string& message) {
    throw Error("jinja: line ", line, ": ", message);
  }

  Value lookup(const std::string& name, const ScopePtr& scope) {
    for (Scope* s = scope.get(); s != nullptr; s = s->parent.get()) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return it->second;
    }
    if (name == "range") return make_function("range", builtin_range);
    if (name == "namespace") {
      return make_function("namespace", [this](const CallArgs& a) {
        Value ns = builtin_dict(a, true);
        namespaces_.push_back(ns);
        return ns;
      });
    }
    if (name == "dict") {
      return make_function("dict", [](const CallArgs& a) { return builtin_dict(a, false); });
    }
    return Value::undefined("'" + name + "' is undefined");
  }

  // Jinja2 raises on most uses of an Undefined; this is the check for those uses.
  static void require_defined(const Value& v, int line) {
    if (v.is_undefined()) fail(line, v.undefined_hint());
  }

  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const NodePtr& node : body) {
      Flow flow = exec(*node, scope, out);
      if (out.size() > limits_.max_output_bytes)
        fail(node->line,
             "the rendered text exceeds " + std::to_string(limits_.max_output_bytes) + " bytes");
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  void assign(const std::vector<std::string>& targets, const Value& value, Scope& scope, int line) {
    if (targets.size() == 1) {
      scope.vars[targets[0]] = value;
      return;
    }
    require_defined(value, line);
    List items = iterate(value);
    if (items.size() != targets.size()) {
      fail(line, "cannot unpack " + std::to_string(items.size()) + " values into " +
                     std::to_string(targets.size()) + " names");
    }
    for (size_t i = 0; i < targets.size(); ++i) scope.vars[targets[i]] = items[i];
  }

  Flow exec(const Node& node, const ScopePtr& scope, std::string& out) {
    switch (node.kind) {
      case Node::Kind::kText:
        out += node.text;
        return Flow::kNormal;
      case Node::Kind::kOutput:
        out += eval(*node.expr, scope).str();
        return Flow::kNormal;
      case Node::Kind::kIf:
        for (const auto& [condition, body] : node.branches) {
          if (eval(*condition, scope).truthy()) return exec_body(body, scope, out);
        }
        return exec_body(node.else_body, scope, out);
      case Node::Kind::kFor:
        exec_for(node, scope, out);
        return Flow::kNormal;
      case Node::Kind::kSet: {
        Value value = eval(*node.expr, scope);
        if (node.target_object.empty()) {
          assign(node.targets, value, *scope, node.line);
          return Flow::kNormal;
        }
        Value object = lookup(node.target_object, scope);
        if (!object.is_dict() || !object.as_dict().is_namespace) {
          fail(node.line, "cannot assign attribute '" + node.attribute + "' on '" +
                              node.target_object + "': it is not a namespace()");
        }
        object.mutable_dict().set(node.attribute, value);
        return Flow::kNormal;
      }
      case Node::Kind::kSetBlock: {
        std::string captured;
        exec_body(node.body, scope, captured);
        scope->vars[node.targets[0]] = Value(std::move(captured));
        return Flow::kNormal;
      }
      case Node::Kind::kMacro:
        scope->vars[node.name] = make_macro(node, scope);
        return Flow::kNormal;
      case Node::Kind::kCallBlock: {
        auto caller_scope = scope;
        const Node* caller_node = &node;
        Value caller = make_function(
            "caller",
            [this, caller_node, caller_scope](const CallArgs& a) {
              auto frame = std::make_shared<Scope>();
              frame->parent = caller_scope;
              bind_params(caller_node->params, a, frame, caller_node->line, "caller");
              std::string text;
              exec_body(caller_node->body, frame, text);
              return Value(std::move(text));
            },
            false);
        out += eval_call(*node.expr, scope, &caller).str();
        return Flow::kNormal;
      }
      case Node::Kind::kBreak:
        return Flow::kBreak;
      case Node::Kind::kContinue:
        return Flow::kContinue;
      case Node::Kind::kGeneration:
        return exec_body(node.body, scope, out);
    }
    return Flow::kNormal;
  }

  void exec_for(const Node& node, const ScopePtr& scope, std::string& out) {
    Value iterable = eval(*node.expr, scope);
    List items;
    try {
      items = iterate(iterable);
    } catch (const Error& e) {
      fail(node.line, e.what());
    }
    if (node.condition) {
      List kept;
      for (const Value& item : items) {
        auto frame = std::make_shared<Scope>();
        frame->parent = scope;
        assign(node.targets, item, *frame, node.line);
        if (eval(*node.condition, frame).truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      auto frame = std::make_shared<Scope>();
      frame->parent = scope;
      exec_body(node.else_body, frame, out);
      return;
    }
    const int64_t length = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < length; ++i) {
      if (++iterations_ > limits_.max_iterations)
        fail(node.line, "the template runs more than " + std::to_string(limits_.max_iterations) +
                            " loop iterations");
      auto frame = std::make_shared<Scope>();
      frame->parent = scope;
      assign(node.targets, items[i], *frame, node.line);
      Dict loop;
      loop.set("index", Value(i + 1));
      loop.set("index0", Value(i));
      loop.set("revindex", Value(length - i));
      loop.set("revindex0", Value(length - i - 1));
      loop.set("first", Value(i == 0));
      loop.set("last", Value(i == length - 1));
      loop.set("length", Value(length));
      loop.set("depth", Value(1));
      loop.set("depth0", Value(0));
      loop.set("previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
      loop.set("nextitem",
               i + 1 < length ? items[i + 1] : Value::undefined("there is no next item"));
      loop.set("cycle", make_function("loop.cycle", [i](const CallArgs& a) {
                 RLAIF_CHECK(!a.positional.empty(), "loop.cycle() needs at least one argument");
                 return a.positional[i % a.positional.size()];
               }));
      frame->vars["loop"] = Value(std::move(loop));
      Flow flow = exec_body(node.body, frame, out);
      if (flow == Flow::kBreak) break;
    }
  }

  void bind_params(const std::vector<std::pair<std::string, ExprPtr>>& params, const CallArgs& args,
                   const ScopePtr& frame, int line, const std::string& what) {
    if (args.positional.size() > params.size()) {
      fail(line, what + "() takes " + std::to_string(params.size()) + " positional arguments but " +
                     std::to_string(args.positional.size()) + " were given");
    }
    for (size_t i = 0; i < params.size(); ++i) {
      const auto& [name, default_value] = params[i];
      const Value* given = i < args.positional.size() ? &args.positional[i] : nullptr;
      for (const auto& [key, value] : args.keyword) {
        if (key == name) given = &value;
      }
      if (given != nullptr) {
        frame->vars[name] = *given;
      } else if (default_value) {
        frame->vars[name] = eval(*default_value, frame);
      } else {
        frame->vars[name] = Value::undefined("'" + name + "' is undefined");
      }
    }
    for (const auto& [key, value] : args.keyword) {
      bool known = key == "caller";
      for (const auto& param : params) known = known || param.first == key;
      if (!known) fail(line, what + "() got an unexpected keyword argument '" + key + "'");
      if (key == "caller") frame->vars["caller"] = value;
    }
  }

  // The macro refers to its defining scope without owning it (the scope holds the macro, so
  // owning would be a cycle); scopes_with_macros_ keeps that scope alive for the render.
  Value make_macro(const Node& node, const ScopePtr& owning_scope) {
    const Node* macro = &node;
    scopes_with_macros_.push_back(owning_scope);
    ScopePtr scope(ScopePtr(), owning_scope.get());
    return make_function(
        node.name,
        [this, macro, scope](const CallArgs& a) {
          if (macro_depth_ >= kMaxMacroDepth) {
            fail(macro->line, "macro '" + macro->name + "' nested deeper than " +
                                  std::to_string(kMaxMacroDepth) + " calls");
          }
          ++macro_depth_;
          struct DepthGuard {
            int& depth;
            ~DepthGuard() { --depth; }
          } guard{macro_depth_};
          auto frame = std::make_shared<Scope>();
          frame->parent = scope;
          bind_params(macro->params, a, frame, macro->line, macro->name);
          std::string text;
          exec_body(macro->body, frame, text);
          return Value(std::move(text));
        },
        false);
  }

  CallArgs eval_args(const Expr& e, size_t first, const ScopePtr& scope) {
    CallArgs args;
    for (size_t i = first; i < e.operands.size(); ++i) {
      args.positional.push_back(eval(*e.operands[i], scope));
    }
    for (const auto& [key, value] : e.keyword_args)
      args.keyword.emplace_back(key, eval(*value, scope));
    return args;
  }

  Value eval_call(const Expr& e, const ScopePtr& scope, const Value* caller) {
    Value callee = eval(*e.operands[0], scope);
    require_defined(callee, e.line);
    if (!callee.is_function()) fail(e.line, "'" + callee.type_name() + "' object is not callable");
    CallArgs args = eval_args(e, 1, scope);
    if (caller != nullptr) args.keyword.emplace_back("caller", *caller);
    const Function& f = callee.as_function();
    if (!f.is_builtin) return f.call(args);
    try {
      return f.call(args);
    } catch (const Error& err) {
      fail(e.line, f.name + "(): " + err.what());
    }
  }

  Value eval(const Expr& e, const ScopePtr& scope) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.literal;
      case Expr::Kind::kName:
        return lookup(e.name, scope);
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        List items;
        for (const ExprPtr& item : e.operands) items.push_back(eval(*item, scope));
        return Value(std::move(items), e.kind == Expr::Kind::kTuple);
      }
      case Expr::Kind::kDict: {
        Dict dict;
        for (size_t i = 0; i + 1 < e.operands.size(); i += 2) {
          Value key = eval(*e.operands[i], scope);
          if (!key.is_string()) fail(e.line, "dict keys must be strings, not " + key.type_name());
          dict.set(key.as_string(), eval(*e.operands[i + 1], scope));
        }
        return Value(std::move(dict));
      }
      case Expr::Kind::kUnary: {
        Value v = eval(*e.operands[0], scope);
        if (e.name == "not") return Value(!v.truthy());
        require_defined(v, e.line);
        if (!v.is_number())
          fail(e.line, "bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
        if (e.name == "+") return v.is_float() ? v : Value(v.as_int());
        return v.is_float() ? Value(-v.as_double()) : Value(wrapping_neg(v.as_int()));
      }
      case Expr::Kind::kBinary:
        return eval_binary(e, scope);
      case Expr::Kind::kCompare: {
        Value left = eval(*e.operands[0], scope);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.operands[i + 1], scope);
          if (!compare(e.ops[i], left, right, e.line)) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case Expr::Kind::kConditional:
        if (eval(*e.operands[1], scope).truthy()) return eval(*e.operands[0], scope);
        if (e.operands[2]) return eval(*e.operands[2], scope);
        return Value::undefined(
            "the inline if expression evaluated to false and no else section was defined");
      case Expr::Kind::kGetAttr: {
        Value object = eval(*e.operands[0], scope);
        require_defined(object, e.line);
        return get_attribute(object, e.name);
      }
      case Expr::Kind::kGetItem: {
        Value object = eval(*e.operands[0], scope);
        require_defined(object, e.line);
        return get_item(object, eval(*e.operands[1], scope));
      }
      case Expr::Kind::kSlice: {
        Value object = eval(*e.operands[0], scope);
        require_defined(object, e.line);
        Value bounds[3];
        const Value* pointers[3] = {nullptr, nullptr, nullptr};
        for (int i = 0; i < 3; ++i) {
          if (e.operands[i + 1]) {
            bounds[i] = eval(*e.operands[i + 1], scope);
            pointers[i] = &bounds[i];
          }
        }
        try {
          return get_slice(object, pointers[0], pointers[1], pointers[2]);
        } catch (const Error& err) {
          fail(e.line, err.what());
        }
      }
      case Expr::Kind::kCall:
        return eval_call(e, scope, nullptr);
      case Expr::Kind::kFilter: {
        Value input = eval(*e.operands[0], scope);
        CallArgs args = eval_args(e, 1, scope);
        try {
          return apply_filter(e.name, input, args);
        } catch (const Error& err) {
          fail(e.line, err.what());
        }
      }
      case Expr::Kind::kTest: {
        Value v = eval(*e.operands[0], scope);
        CallArgs args = eval_args(e, 1, scope);
        try {
          return Value(apply_test(e.name, v, args) != e.negated);
        } catch (const Error& err) {
          fail(e.line, err.what());
        }
      }
    }
    fail(e.line, "unknown expression");
  }

  bool compare(const std::string& op, const Value& a, const Value& b, int line) {
    if (op == "==") return values_equal(a, b);
    if (op == "!=") return !values_equal(a, b);
    if (op == "in" || op == "notin") {
      try {
        CallArgs args;
        args.positional.push_back(b);
        bool found = apply_test("in", a, args);
        return op == "in" ? found : !found;
      } catch (const Error& err) {
        fail(line, err.what());
      }
    }
    require_defined(a, line);
    require_defined(b, line);
    try {
      if (op == "<") return value_less(a, b);
      if (op == ">") return value_less(b, a);
      if (op == "<=") return !value_less(b, a);
      return !value_less(a, b);  // >=
    } catch (const Error& err) {
      fail(line, err.what());
    }
  }

  Value eval_binary(const Expr& e, const ScopePtr& scope) {
    const std::string& op = e.name;
    Value a = eval(*e.operands[0], scope);
    if (op == "and") return a.truthy() ? eval(*e.operands[1], scope) : a;
    if (op == "or") return a.truthy() ? a : eval(*e.operands[1], scope);
    Value b = eval(*e.operands[1], scope);
    if (op == "~") return Value(a.str() + b.str());
    require_defined(a, e.line);
    require_defined(b, e.line);
    auto unsupported = [&]() {
      fail(e.line, "unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" +
                       b.type_name() + "'");
    };
    if (a.is_number() && b.is_number()) {
      bool floating = a.is_float() || b.is_float();
      if (op == "+")
        return floating ? Value(a.as_double() + b.as_double())
                        : Value(wrapping_add(a.as_int(), b.as_int()));
      if (op == "-")
        return floating ? Value(a.as_double() - b.as_double())
                        : Value(wrapping_sub(a.as_int(), b.as_int()));
      if (op == "*")
        return floating ? Value(a.as_double() * b.as_double())
                        : Value(wrapping_mul(a.as_int(), b.as_int()));
      if (op == "/") {
        if (b.as_double() == 0) fail(e.line, "division by zero");
        return Value(a.as_double() / b.as_double());
      }
      if (op == "//" || op == "%") {
        if (b.as_double() == 0) fail(e.line, "integer division or modulo by zero");
        if (floating) {
          double x = a.as_double(), y = b.as_double();
          double q = std::floor(x / y);
          return op == "//" ? Value(q) : Value(x - q * y);
        }
        int64_t x = a.as_int(), y = b.as_int();
        // x / -1 is -x, which for INT64_MIN overflows (and traps on x86): it wraps instead.
        int64_t q = y == -1 ? wrapping_neg(x) : x / y;
        if (y != -1 && (x % y != 0) && ((x < 0) != (y < 0))) --q;
        return op == "//" ? Value(q) : Value(wrapping_sub(x, wrapping_mul(q, y)));
      }
      if (op == "**") {
        if (!floating && b.as_int() >= 0) {
          // Square-and-multiply; like the other integer operators it wraps past 64 bits.
          uint64_t result = 1, base = static_cast<uint64_t>(a.as_int());
          for (uint64_t n = static_cast<uint64_t>(b.as_int()); n != 0; n >>= 1) {
            if (n & 1) result *= base;
            base *= base;
          }
          return Value(static_cast<int64_t>(result));
        }
        return Value(std::pow(a.as_double(), b.as_double()));
      }
    }
    if (op == "+" && a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
    if (op == "+" && a.is_list() && b.is_list()) {
      List items = a.as_list();
      items.insert(items.end(), b.as_list().begin(), b.as_list().end());
      return Value(std::move(items), a.is_tuple());
    }
    if (op == "*" && (a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) {
      return repeat(a, b.as_int(), e.line);
    }
    if (op == "*" && (b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) {
      return repeat(b, a.as_int(), e.line);
    }
    unsupported();
    return Value();
  }

  static Value repeat(const Value& v, int64_t times, int line) {
    uint64_t unit = v.is_string() ? v.as_string().size() : v.as_list().size();
    if (times > 0 && unit * static_cast<uint64_t>(times) > (uint64_t{1} << 28)) {
      fail(line, "repetition would make a value of " + std::to_string(unit * times) + " elements");
    }
    if (v.is_string()) {
      std::string out;
      for (int64_t i = 0; i < times; ++i) out += v.as_string();
      return Value(std::move(out));
    }
    List out;
    for (int64_t i = 0; i < times; ++i)
      out.insert(out.end(), v.as_list().begin(), v.as_list().end());
    return Value(std::move(out), v.is_tuple());
  }

  // Macros may call themselves; a bound keeps a runaway template from exhausting the stack.
  static constexpr int kMaxMacroDepth = 200;
  int macro_depth_ = 0;
  RenderLimits limits_;
  int64_t iterations_ = 0;
  std::vector<ScopePtr> scopes_with_macros_;
  std::vector<Value> namespaces_;
  ScopePtr root_;
};

}  // namespace

std::string render_body(const Body& body, const Dict& context, const RenderLimits& limits) {
  return Interpreter(context, limits).render(body);
}

}  // namespace rlaif::jinja
