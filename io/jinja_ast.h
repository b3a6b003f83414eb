// The syntax tree of a parsed Jinja template: expressions (Expr) and statements (Node). One
// struct per category with a kind tag keeps the interpreter a pair of switch statements; the
// comment on each kind says which fields it uses.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/jinja_value.h"

namespace rlaif::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,  // literal
    kName,     // name
    kList,     // operands: the items
    kTuple,    // operands: the items
    kDict,     // operands: key, value, key, value, ...
    kUnary,    // name: "-", "+" or "not"; operands[0]
    kBinary,   // name: the operator (+ - * / // % ** ~ and or); operands[0], operands[1]
    kCompare,  // operands: a chain a op1 b op2 c; ops: the operators (== != < <= > >= in, notin)
    kConditional,  // operands: then, condition, else (else may be null: Undefined)
    kGetAttr,      // name: the attribute; operands[0]: the object
    kGetItem,      // operands[0]: the object, operands[1]: the key
    kSlice,        // operands[0]: the object; operands[1..3]: start, stop, step (each may be null)
    kCall,         // operands[0]: the callee; operands[1..]: positional args; keyword_args
    kFilter,       // name: the filter; operands[0]: its input; operands[1..]: args; keyword_args
    kTest,         // name: the test; negated for "is not"; operands[0]: the value; operands[1..]
  };
  Kind kind;
  int line = 0;
  Value literal;
  std::string name;
  std::vector<ExprPtr> operands;
  std::vector<std::string> ops;
  std::vector<std::pair<std::string, ExprPtr>> keyword_args;
  bool negated = false;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    kText,       // text
    kOutput,     // expr: printed with str()
    kIf,         // branches: (condition, body) for if and each elif; else_body
    kFor,        // targets; expr: the iterable; condition: the "if" filter (may be null); body;
                 // else_body
    kSet,        // targets (several = unpacking) or target_object.attribute; expr: the value
    kSetBlock,   // targets[0]; body: rendered into the variable
    kMacro,      // name; params (default may be null); body
    kCallBlock,  // expr: the call of a macro; params: caller's parameters; body: caller()
    kBreak,
    kContinue,
    kGeneration,  // body (Hugging Face's {% generation %}: renders its body unchanged)
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::vector<std::string> targets;
  std::string target_object;
  std::string attribute;
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;
};

}  // namespace rlaif::jinja
