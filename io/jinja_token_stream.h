// A cursor over a template's tokens (io/jinja_lexer.h) with the look-ahead and "expect" helpers
// that the expression and statement parsers share. Errors name the line and what was found.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/jinja_ast.h"
#include "io/jinja_lexer.h"
#include "runtime/error.h"

namespace rlaif::jinja {

inline ExprPtr make_expr(Expr::Kind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

class TokenStream {
 public:
  using Type = Token::Type;
  explicit TokenStream(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

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

 protected:
  std::vector<Token> tokens_;
  size_t pos_ = 0;
};

}  // namespace rlaif::jinja
