#include "io/jinja_expression_parser.h"

#include "io/jinja_filters.h"

namespace rlaif::jinja {

ExprPtr ExpressionParser::parse_tuple(bool with_condexpr) {
  int line = peek().line;
  ExprPtr first = parse_expression(with_condexpr);
  if (!at_operator(",")) return first;
  auto tuple = make_expr(Expr::Kind::kTuple, line);
  tuple->operands.push_back(std::move(first));
  while (at_operator(",")) {
    ++pos_;
    if (peek().type == Type::kBlockEnd || peek().type == Type::kVariableEnd || at_name("if") ||
        at_operator(")")) {
      break;
    }
    tuple->operands.push_back(parse_expression(with_condexpr));
  }
  return tuple;
}

ExprPtr ExpressionParser::parse_expression(bool with_condexpr) {
  NestingGuard guard(nesting_, peek().line);
  ExprPtr value = parse_or();
  if (!with_condexpr) return value;
  while (at_name("if")) {
    int line = next().line;
    auto conditional = make_expr(Expr::Kind::kConditional, line);
    ExprPtr condition = parse_or();
    ExprPtr otherwise;
    if (at_name("else")) {
      ++pos_;
      otherwise = parse_expression(true);
    }
    conditional->operands.push_back(std::move(value));
    conditional->operands.push_back(std::move(condition));
    conditional->operands.push_back(std::move(otherwise));
    value = std::move(conditional);
  }
  return value;
}

ExprPtr ExpressionParser::binary(const std::string& op, ExprPtr left, ExprPtr right, int line) {
  auto e = make_expr(Expr::Kind::kBinary, line);
  e->name = op;
  e->operands.push_back(std::move(left));
  e->operands.push_back(std::move(right));
  return e;
}

ExprPtr ExpressionParser::parse_or() {
  ExprPtr left = parse_and();
  while (at_name("or")) {
    int line = next().line;
    left = binary("or", std::move(left), parse_and(), line);
  }
  return left;
}

ExprPtr ExpressionParser::parse_and() {
  ExprPtr left = parse_not();
  while (at_name("and")) {
    int line = next().line;
    left = binary("and", std::move(left), parse_not(), line);
  }
  return left;
}

ExprPtr ExpressionParser::parse_not() {
  if (at_name("not")) {
    NestingGuard guard(nesting_, peek().line);
    auto e = make_expr(Expr::Kind::kUnary, next().line);
    e->name = "not";
    e->operands.push_back(parse_not());
    return e;
  }
  return parse_compare();
}

ExprPtr ExpressionParser::parse_compare() {
  int line = peek().line;
  ExprPtr first = parse_math1();
  ExprPtr chain;
  while (true) {
    std::string op;
    const Token& t = peek();
    if (t.type == Type::kOperator && (t.text == "==" || t.text == "!=" || t.text == "<" ||
                                      t.text == "<=" || t.text == ">" || t.text == ">=")) {
      op = t.text;
      ++pos_;
    } else if (at_name("in")) {
      op = "in";
      ++pos_;
    } else if (at_name("not") && at_name("in", 1)) {
      op = "notin";
      pos_ += 2;
    } else {
      break;
    }
    if (!chain) {
      chain = make_expr(Expr::Kind::kCompare, line);
      chain->operands.push_back(std::move(first));
    }
    chain->ops.push_back(op);
    chain->operands.push_back(parse_math1());
  }
  return chain ? std::move(chain) : std::move(first);
}

ExprPtr ExpressionParser::parse_math1() {
  ExprPtr left = parse_concat();
  while (at_operator("+") || at_operator("-")) {
    const Token& op = next();
    left = binary(op.text, std::move(left), parse_concat(), op.line);
  }
  return left;
}

ExprPtr ExpressionParser::parse_concat() {
  ExprPtr left = parse_math2();
  while (at_operator("~")) {
    int line = next().line;
    left = binary("~", std::move(left), parse_math2(), line);
  }
  return left;
}

ExprPtr ExpressionParser::parse_math2() {
  ExprPtr left = parse_pow();
  while (at_operator("*") || at_operator("/") || at_operator("//") || at_operator("%")) {
    const Token& op = next();
    left = binary(op.text, std::move(left), parse_pow(), op.line);
  }
  return left;
}

ExprPtr ExpressionParser::parse_pow() {
  ExprPtr left = parse_unary(true);
  while (at_operator("**")) {
    int line = next().line;
    left = binary("**", std::move(left), parse_unary(true), line);
  }
  return left;
}

ExprPtr ExpressionParser::parse_unary(bool with_filter) {
  ExprPtr node;
  if (at_operator("-") || at_operator("+")) {
    NestingGuard guard(nesting_, peek().line);
    const Token& op = next();
    node = make_expr(Expr::Kind::kUnary, op.line);
    node->name = op.text;
    node->operands.push_back(parse_unary(false));
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  if (with_filter) node = parse_filters_and_tests(std::move(node));
  return node;
}

ExprPtr ExpressionParser::parse_primary() {
  const Token& t = peek();
  int line = t.line;
  if (t.type == Type::kName) {
    ++pos_;
    auto e = make_expr(Expr::Kind::kLiteral, line);
    if (t.text == "true" || t.text == "True") {
      e->literal = Value(true);
    } else if (t.text == "false" || t.text == "False") {
      e->literal = Value(false);
    } else if (t.text == "none" || t.text == "None") {
      e->literal = Value::none();
    } else {
      e->kind = Expr::Kind::kName;
      e->name = t.text;
    }
    return e;
  }
  if (t.type == Type::kString) {
    std::string text;
    while (peek().type == Type::kString) text += next().text;
    auto e = make_expr(Expr::Kind::kLiteral, line);
    e->literal = Value(std::move(text));
    return e;
  }
  if (t.type == Type::kInteger || t.type == Type::kFloat) {
    ++pos_;
    auto e = make_expr(Expr::Kind::kLiteral, line);
    try {
      e->literal = t.type == Type::kInteger ? Value(static_cast<int64_t>(std::stoll(t.text)))
                                            : Value(std::stod(t.text));
    } catch (const std::out_of_range&) {
      throw Error("jinja: line ", line, ": number ", t.text, " is out of range");
    }
    return e;
  }
  if (at_operator("(")) {
    ++pos_;
    if (at_operator(")")) {
      ++pos_;
      return make_expr(Expr::Kind::kTuple, line);
    }
    ExprPtr inner = parse_tuple(true);
    expect_operator(")");
    return inner;
  }
  if (at_operator("[")) {
    ++pos_;
    auto e = make_expr(Expr::Kind::kList, line);
    while (!at_operator("]")) {
      if (!e->operands.empty()) expect_operator(",");
      if (at_operator("]")) break;
      e->operands.push_back(parse_expression(true));
    }
    ++pos_;
    return e;
  }
  if (at_operator("{")) {
    ++pos_;
    auto e = make_expr(Expr::Kind::kDict, line);
    while (!at_operator("}")) {
      if (!e->operands.empty()) expect_operator(",");
      if (at_operator("}")) break;
      e->operands.push_back(parse_expression(true));
      expect_operator(":");
      e->operands.push_back(parse_expression(true));
    }
    ++pos_;
    return e;
  }
  fail("an expression");
}

ExprPtr ExpressionParser::parse_postfix(ExprPtr node) {
  while (true) {
    if (at_operator(".")) {
      int line = next().line;
      if (peek().type == Type::kInteger) {
        auto e = make_expr(Expr::Kind::kGetItem, line);
        auto index = make_expr(Expr::Kind::kLiteral, line);
        const std::string digits = next().text;
        try {
          index->literal = Value(static_cast<int64_t>(std::stoll(digits)));
        } catch (const std::out_of_range&) {
          throw Error("jinja: line ", line, ": index .", digits, " is out of range");
        }
        e->operands.push_back(std::move(node));
        e->operands.push_back(std::move(index));
        node = std::move(e);
        continue;
      }
      auto e = make_expr(Expr::Kind::kGetAttr, line);
      e->name = expect_identifier();
      e->operands.push_back(std::move(node));
      node = std::move(e);
    } else if (at_operator("[")) {
      node = parse_subscript(std::move(node));
    } else if (at_operator("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr ExpressionParser::parse_subscript(ExprPtr object) {
  int line = next().line;
  ExprPtr parts[3];
  int colons = 0;
  while (!at_operator("]")) {
    if (at_operator(":")) {
      ++pos_;
      RLAIF_CHECK(++colons <= 2, "jinja: line ", line, ": too many ':' in a slice");
      continue;
    }
    RLAIF_CHECK(!parts[colons], "jinja: line ", line, ": malformed subscript");
    parts[colons] = parse_expression(true);
  }
  ++pos_;
  if (colons == 0) {
    RLAIF_CHECK(parts[0] != nullptr, "jinja: line ", line, ": empty subscript []");
    auto e = make_expr(Expr::Kind::kGetItem, line);
    e->operands.push_back(std::move(object));
    e->operands.push_back(std::move(parts[0]));
    return e;
  }
  auto e = make_expr(Expr::Kind::kSlice, line);
  e->operands.push_back(std::move(object));
  for (auto& part : parts) e->operands.push_back(std::move(part));
  return e;
}

void ExpressionParser::parse_call_args(Expr& e) {
  expect_operator("(");
  bool first = true;
  while (!at_operator(")")) {
    if (!first) expect_operator(",");
    first = false;
    if (at_operator(")")) break;
    if (at_operator("*") || at_operator("**")) {
      throw Error("jinja: line ", peek().line, ": unsupported construct: *args/**kwargs in a call");
    }
    if (peek().type == Type::kName && at_operator("=", 1)) {
      std::string key = next().text;
      ++pos_;
      e.keyword_args.emplace_back(std::move(key), parse_expression(true));
    } else {
      e.operands.push_back(parse_expression(true));
    }
  }
  ++pos_;
}

ExprPtr ExpressionParser::parse_call(ExprPtr callee) {
  auto e = make_expr(Expr::Kind::kCall, peek().line);
  e->operands.push_back(std::move(callee));
  parse_call_args(*e);
  return e;
}

ExprPtr ExpressionParser::parse_filters_and_tests(ExprPtr node) {
  while (true) {
    if (at_operator("|")) {
      int line = next().line;
      auto e = make_expr(Expr::Kind::kFilter, line);
      e->name = expect_identifier();
      if (!is_known_filter(e->name)) {
        throw Error("jinja: line ", line, ": unsupported filter '", e->name, "'");
      }
      e->operands.push_back(std::move(node));
      if (at_operator("(")) parse_call_args(*e);
      node = std::move(e);
    } else if (at_name("is")) {
      int line = next().line;
      auto e = make_expr(Expr::Kind::kTest, line);
      if (at_name("not")) {
        ++pos_;
        e->negated = true;
      }
      e->name = expect_identifier();
      if (!is_known_test(e->name)) {
        throw Error("jinja: line ", line, ": unsupported test '", e->name, "'");
      }
      e->operands.push_back(std::move(node));
      const Token& t = peek();
      if (at_operator("(")) {
        parse_call_args(*e);
      } else if ((t.type == Type::kName || t.type == Type::kString || t.type == Type::kInteger ||
                  t.type == Type::kFloat || at_operator("[") || at_operator("{")) &&
                 !at_name("else") && !at_name("or") && !at_name("and")) {
        RLAIF_CHECK(!at_name("is"), "jinja: line ", line, ": 'is' cannot follow a test");
        e->operands.push_back(parse_postfix(parse_primary()));
      }
      node = std::move(e);
    } else if (at_operator("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

std::vector<Token> tokens_;
size_t pos_ = 0;

}  // namespace rlaif::jinja
