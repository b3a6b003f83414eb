#include "io/jinja_parser.h"

#include <algorithm>
#include <initializer_list>

#include "io/jinja_filters.h"
#include "io/jinja_lexer.h"
#include "runtime/error.h"

namespace rlaif::jinja {
namespace {

using Type = Token::Type;

ExprPtr make_expr(Expr::Kind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Body parse() {
    Body body = parse_body({});
    if (peek().type != Type::kEnd) {
      throw Error("jinja: line ", peek().line, ": unexpected {% ", tokens_[pos_ + 1].text,
                  " %} with no open block it could close");
    }
    return body;
  }

 private:
  const Token& peek(size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& next() { return tokens_[std::min(pos_++, tokens_.size() - 1)]; }
  bool at_operator(const char* op, size_t ahead = 0) const {
    return peek(ahead).type == Type::kOperator && peek(ahead).text == op;
  }
  bool at_name(const char* name, size_t ahead = 0) const {
    return peek(ahead).type == Type::kName && peek(ahead).text == name;
  }
  [[noreturn]] void fail(const std::string& what) const {
    const Token& t = peek();
    std::string found = t.type == Type::kEnd           ? "the end of the template"
                        : t.type == Type::kBlockEnd    ? "'%}'"
                        : t.type == Type::kVariableEnd ? "'}}'"
                        : t.type == Type::kString      ? "a string"
                                                       : "'" + t.text + "'";
    throw Error("jinja: line ", t.line, ": expected ", what, ", found ", found);
  }
  void expect_operator(const char* op) {
    if (!at_operator(op)) fail(std::string("'") + op + "'");
    ++pos_;
  }
  void expect_name(const char* name) {
    if (!at_name(name)) fail(std::string("'") + name + "'");
    ++pos_;
  }
  std::string expect_identifier() {
    if (peek().type != Type::kName) fail("a name");
    return next().text;
  }
  void expect_block_end() {
    if (peek().type != Type::kBlockEnd) fail("'%}'");
    ++pos_;
  }

  // Statements and text up to a {% tag %} whose keyword is in `ends` (left unconsumed).
  Body parse_body(std::initializer_list<const char*> ends) {
    Body body;
    while (true) {
      const Token& t = peek();
      if (t.type == Type::kEnd) {
        if (ends.size() != 0) {
          throw Error("jinja: line ", t.line, ": missing {% ", *(ends.end() - 1),
                      " %}: the template ended inside a block");
        }
        return body;
      }
      if (t.type == Type::kText) {
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::kText;
        node->line = t.line;
        node->text = t.text;
        body.push_back(std::move(node));
        ++pos_;
      } else if (t.type == Type::kVariableBegin) {
        ++pos_;
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::kOutput;
        node->line = t.line;
        node->expr = parse_tuple(true);
        if (peek().type != Type::kVariableEnd) fail("'}}'");
        ++pos_;
        body.push_back(std::move(node));
      } else if (t.type == Type::kBlockBegin) {
        const Token& keyword = peek(1);
        for (const char* end : ends) {
          if (keyword.type == Type::kName && keyword.text == end) return body;
        }
        if (keyword.type == Type::kName && is_closing_keyword(keyword.text)) return body;
        pos_ += 2;
        if (keyword.type != Type::kName) {
          throw Error("jinja: line ", keyword.line, ": expected a statement name after {%");
        }
        body.push_back(parse_statement(keyword));
      } else {
        fail("text or a tag");
      }
    }
  }

  static bool is_closing_keyword(const std::string& word) {
    static const char* const kClosing[] = {"endif",  "elif",     "else",    "endfor",
                                           "endset", "endmacro", "endcall", "endgeneration"};
    for (const char* k : kClosing) {
      if (word == k) return true;
    }
    return false;
  }

  // Consumes "{% word %}" closing a block.
  void expect_closing_tag(const char* word, int opened_at) {
    if (peek().type != Type::kBlockBegin || !at_name(word, 1)) {
      throw Error("jinja: line ", peek().line, ": expected {% ", word,
                  " %} closing the block of line ", opened_at);
    }
    pos_ += 2;
    expect_block_end();
  }

  NodePtr parse_statement(const Token& keyword) {
    const std::string& word = keyword.text;
    auto node = std::make_unique<Node>();
    node->line = keyword.line;
    if (word == "if") {
      node->kind = Node::Kind::kIf;
      while (true) {
        ExprPtr condition = parse_expression(true);
        expect_block_end();
        Body body = parse_body({"elif", "else", "endif"});
        node->branches.emplace_back(std::move(condition), std::move(body));
        if (at_name("elif", 1)) {
          pos_ += 2;
          continue;
        }
        if (at_name("else", 1)) {
          pos_ += 2;
          expect_block_end();
          node->else_body = parse_body({"endif"});
        }
        expect_closing_tag("endif", keyword.line);
        return node;
      }
    }
    if (word == "for") {
      node->kind = Node::Kind::kFor;
      node->targets = parse_targets();
      expect_name("in");
      node->expr = parse_tuple(false);
      if (at_name("if")) {
        ++pos_;
        node->condition = parse_expression(true);
      }
      if (at_name("recursive")) {
        throw Error("jinja: line ", peek().line, ": unsupported construct: recursive for loops");
      }
      expect_block_end();
      node->body = parse_body({"else", "endfor"});
      if (at_name("else", 1)) {
        pos_ += 2;
        expect_block_end();
        node->else_body = parse_body({"endfor"});
      }
      expect_closing_tag("endfor", keyword.line);
      return node;
    }
    if (word == "set") {
      if (peek().type == Type::kName && at_operator(".", 1)) {
        node->kind = Node::Kind::kSet;
        node->target_object = next().text;
        ++pos_;
        node->attribute = expect_identifier();
        expect_operator("=");
        node->expr = parse_tuple(true);
        expect_block_end();
        return node;
      }
      node->targets = parse_targets();
      if (at_operator("=")) {
        ++pos_;
        node->kind = Node::Kind::kSet;
        node->expr = parse_tuple(true);
        expect_block_end();
        return node;
      }
      if (at_operator("|")) {
        throw Error("jinja: line ", peek().line,
                    ": unsupported construct: filters on a block set ({% set x | filter %})");
      }
      RLAIF_CHECK(node->targets.size() == 1, "jinja: line ", keyword.line,
                  ": a block set assigns one name");
      node->kind = Node::Kind::kSetBlock;
      expect_block_end();
      node->body = parse_body({"endset"});
      expect_closing_tag("endset", keyword.line);
      return node;
    }
    if (word == "macro") {
      node->kind = Node::Kind::kMacro;
      node->name = expect_identifier();
      parse_params(node->params);
      expect_block_end();
      node->body = parse_body({"endmacro"});
      expect_closing_tag("endmacro", keyword.line);
      return node;
    }
    if (word == "call") {
      node->kind = Node::Kind::kCallBlock;
      if (at_operator("(")) parse_params(node->params);
      node->expr = parse_expression(true);
      if (node->expr->kind != Expr::Kind::kCall) {
        throw Error("jinja: line ", keyword.line, ": {% call %} needs a macro call");
      }
      expect_block_end();
      node->body = parse_body({"endcall"});
      expect_closing_tag("endcall", keyword.line);
      return node;
    }
    if (word == "break" || word == "continue") {
      node->kind = word == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      expect_block_end();
      return node;
    }
    if (word == "generation") {
      node->kind = Node::Kind::kGeneration;
      expect_block_end();
      node->body = parse_body({"endgeneration"});
      expect_closing_tag("endgeneration", keyword.line);
      return node;
    }
    throw Error("jinja: line ", keyword.line, ": unsupported construct: {% ", word, " %}");
  }

  // A for or set target: a name, or names separated by commas, optionally in parentheses.
  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool parenthesized = at_operator("(");
    if (parenthesized) ++pos_;
    names.push_back(expect_identifier());
    while (at_operator(",")) {
      ++pos_;
      if (peek().type != Type::kName || at_name("in")) break;
      names.push_back(expect_identifier());
    }
    if (parenthesized) expect_operator(")");
    return names;
  }

  void parse_params(std::vector<std::pair<std::string, ExprPtr>>& params) {
    expect_operator("(");
    while (!at_operator(")")) {
      if (!params.empty()) expect_operator(",");
      if (at_operator(")")) break;
      std::string name = expect_identifier();
      ExprPtr default_value;
      if (at_operator("=")) {
        ++pos_;
        default_value = parse_expression(true);
      }
      params.emplace_back(std::move(name), std::move(default_value));
    }
    ++pos_;
  }

  // An expression, or several separated by commas (a tuple).
  ExprPtr parse_tuple(bool with_condexpr) {
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

  ExprPtr parse_expression(bool with_condexpr) {
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

  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, int line) {
    auto e = make_expr(Expr::Kind::kBinary, line);
    e->name = op;
    e->operands.push_back(std::move(left));
    e->operands.push_back(std::move(right));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (at_name("or")) {
      int line = next().line;
      left = binary("or", std::move(left), parse_and(), line);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (at_name("and")) {
      int line = next().line;
      left = binary("and", std::move(left), parse_not(), line);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (at_name("not")) {
      auto e = make_expr(Expr::Kind::kUnary, next().line);
      e->name = "not";
      e->operands.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
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

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (at_operator("+") || at_operator("-")) {
      const Token& op = next();
      left = binary(op.text, std::move(left), parse_concat(), op.line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (at_operator("~")) {
      int line = next().line;
      left = binary("~", std::move(left), parse_math2(), line);
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (at_operator("*") || at_operator("/") || at_operator("//") || at_operator("%")) {
      const Token& op = next();
      left = binary(op.text, std::move(left), parse_pow(), op.line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (at_operator("**")) {
      int line = next().line;
      left = binary("**", std::move(left), parse_unary(true), line);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    ExprPtr node;
    if (at_operator("-") || at_operator("+")) {
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

  ExprPtr parse_primary() {
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

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (at_operator(".")) {
        int line = next().line;
        if (peek().type == Type::kInteger) {
          auto e = make_expr(Expr::Kind::kGetItem, line);
          auto index = make_expr(Expr::Kind::kLiteral, line);
          index->literal = Value(static_cast<int64_t>(std::stoll(next().text)));
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

  ExprPtr parse_subscript(ExprPtr object) {
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

  // Arguments "(a, b, key=c)" appended to `e` (positional after operands[0]).
  void parse_call_args(Expr& e) {
    expect_operator("(");
    bool first = true;
    while (!at_operator(")")) {
      if (!first) expect_operator(",");
      first = false;
      if (at_operator(")")) break;
      if (at_operator("*") || at_operator("**")) {
        throw Error("jinja: line ", peek().line,
                    ": unsupported construct: *args/**kwargs in a call");
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

  ExprPtr parse_call(ExprPtr callee) {
    auto e = make_expr(Expr::Kind::kCall, peek().line);
    e->operands.push_back(std::move(callee));
    parse_call_args(*e);
    return e;
  }

  ExprPtr parse_filters_and_tests(ExprPtr node) {
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
};

}  // namespace

Body parse_template(std::string_view source) {
  return Parser(tokenize_template(source)).parse();
}

}  // namespace rlaif::jinja
