#include "io/jinja_parser.h"

#include <algorithm>
#include <initializer_list>

#include "io/jinja_expression_parser.h"
#include "io/jinja_lexer.h"
#include "runtime/error.h"

namespace rlaif::jinja {
namespace {

using Type = Token::Type;

class Parser : public ExpressionParser {
 public:
  using ExpressionParser::ExpressionParser;

  Body parse() {
    Body body = parse_body({});
    if (peek().type != Type::kEnd) {
      throw Error("jinja: line ", peek().line, ": unexpected {% ", tokens_[pos_ + 1].text,
                  " %} with no open block it could close");
    }
    return body;
  }

 private:
  // Statements and text up to a {% tag %} whose keyword is in `ends` (left unconsumed).
  Body parse_body(std::initializer_list<const char*> ends) {
    NestingGuard guard(nesting_, peek().line);
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
};

}  // namespace

Body parse_template(std::string_view source) {
  return Parser(tokenize_template(source)).parse();
}

}  // namespace rlaif::jinja
