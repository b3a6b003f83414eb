// Parses expressions with jinja2's grammar and operator precedence, loosest first:
//   a if c else b  >  or  >  and  >  not  >  comparisons (== != < <= > >= in, not in; chained)
//   >  + -  >  ~  >  * / // %  >  **  >  unary - +  >  filters | and tests "is"  >  . [] ()
// Filters and tests are checked against io/jinja_filters.h as they are parsed, so an
// unsupported one is an error naming it and its line before anything renders.
#pragma once

#include <string>
#include <vector>

#include "io/jinja_token_stream.h"

namespace rlaif::jinja {

class ExpressionParser : public TokenStream {
 public:
  using TokenStream::TokenStream;

  // An expression, or several separated by commas (a tuple). Without `with_condexpr`, a
  // trailing "if" is left for the caller (the filter of a for loop).
  ExprPtr parse_tuple(bool with_condexpr);
  ExprPtr parse_expression(bool with_condexpr);
  // Arguments "(a, b, key=c)" appended to `e`: positional ones after operands[0].
  void parse_call_args(Expr& e);

 protected:
  // How deeply expressions and blocks nest at most: a hostile template ("((((...", thousands of
  // nested ifs) is an error naming its line, never a stack overflow in the recursive parser or
  // renderer.
  static constexpr int kMaxNesting = 256;
  // Counts one level of nesting for its scope; Error naming `line` past kMaxNesting.
  class NestingGuard {
   public:
    NestingGuard(int& depth, int line) : depth_(depth) {
      if (++depth_ > kMaxNesting) {
        --depth_;
        throw Error("jinja: line ", line, ": the template nests deeper than ", kMaxNesting,
                    " levels");
      }
    }
    ~NestingGuard() { --depth_; }
    NestingGuard(const NestingGuard&) = delete;
    NestingGuard& operator=(const NestingGuard&) = delete;

   private:
    int& depth_;
  };
  int nesting_ = 0;

 private:
  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, int line);
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr object);
  ExprPtr parse_call(ExprPtr callee);
  ExprPtr parse_filters_and_tests(ExprPtr node);
};

}  // namespace rlaif::jinja
