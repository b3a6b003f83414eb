// What the interpreter says when a template is outside the supported subset or fails at run
// time: the message names the construct (statement, filter, test) and the template line.
#include <gtest/gtest.h>

#include <string>

#include "io/jinja_template.h"
#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

std::string parse_error(const std::string& source) {
  return test::error_of([&] { JinjaTemplate t(source); });
}

std::string render_error(const std::string& source) {
  return test::error_of([&] { JinjaTemplate(source).render(jinja::Dict{}); });
}

void expect_contains(const std::string& message, const std::string& part) {
  EXPECT_NE(message.find(part), std::string::npos) << "message: " << message;
}

TEST(JinjaErrors, UnsupportedStatementsNameTheConstructAndLine) {
  std::string message = parse_error("a\n{% if x %}\n{% include 'other.jinja' %}\n{% endif %}");
  expect_contains(message, "line 3");
  expect_contains(message, "unsupported construct: {% include %}");
  for (const char* statement : {"extends", "import", "from", "block", "filter", "with", "do"}) {
    expect_contains(parse_error(std::string("{% ") + statement + " x %}"),
                    std::string("{% ") + statement + " %}");
  }
  expect_contains(parse_error("\n\n{% for x in xs recursive %}{% endfor %}"),
                  "line 3: unsupported construct: recursive for loops");
  expect_contains(parse_error("{% set x | upper %}a{% endset %}"), "filters on a block set");
  expect_contains(parse_error("{{ f(*args) }}"), "*args/**kwargs");
}

TEST(JinjaErrors, UnknownFiltersAndTestsAreRejectedWhenParsed) {
  expect_contains(parse_error("ok\n{{ x | nosuchfilter }}"),
                  "line 2: unsupported filter 'nosuchfilter'");
  expect_contains(parse_error("{{ x is nosuchtest }}"), "line 1: unsupported test 'nosuchtest'");
  expect_contains(render_error("{{ [1]|map('nosuchfilter')|list }}"),
                  "unsupported filter 'nosuchfilter'");
}

TEST(JinjaErrors, SyntaxErrorsNameTheLine) {
  expect_contains(parse_error("{% if true %}\nunclosed"), "missing {% endif %}");
  expect_contains(parse_error("x\n{{ 1 + }}"), "line 2: expected an expression");
  expect_contains(parse_error("{% endif %}"), "unexpected {% endif %}");
  expect_contains(parse_error("{{ 'abc }}"), "unterminated string literal");
  expect_contains(parse_error("\n{{ x"), "line 2: {{ is never closed");
  expect_contains(parse_error("{# open"), "comment {# is never closed");
  expect_contains(parse_error("{{ a ? b }}"), "unexpected character '?'");
}

TEST(JinjaErrors, RunTimeErrorsNameTheLineAndOperation) {
  expect_contains(render_error("\n{{ missing.attr }}"), "line 2: 'missing' is undefined");
  expect_contains(render_error("{{ missing + 1 }}"), "'missing' is undefined");
  expect_contains(render_error("{{ missing() }}"), "'missing' is undefined");
  expect_contains(render_error("{{ {}.a.b }}"), "'dict object' has no attribute 'a'");
  expect_contains(render_error("{{ 'a' + 1 }}"),
                  "unsupported operand type(s) for +: 'str' and 'int'");
  expect_contains(render_error("{{ 1 // 0 }}"), "modulo by zero");
  expect_contains(render_error("{{ 5|join }}"), "filter 'join': 'int' object is not iterable");
  expect_contains(render_error("{{ missing|tojson }}"), "filter 'tojson'");
  expect_contains(render_error("{{ 3 is divisibleby 0 }}"), "test 'divisibleby'");
  expect_contains(render_error("{{ 'x'.startswith(1) }}"), "startswith()");
  expect_contains(render_error("{% set d = {} %}{% set d.x = 1 %}"), "not a namespace()");
  expect_contains(render_error("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}"),
                  "m() takes 1 positional arguments but 2 were given");
  expect_contains(render_error("{% set a, b = [1] %}"), "cannot unpack 1 values into 2 names");
  expect_contains(render_error("{{ 1 < 'a' }}"), "'<' not supported");
  expect_contains(render_error("{% for x in 5 %}{% endfor %}"), "'int' object is not iterable");
  expect_contains(render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
                  "macro 'f' nested deeper than 200 calls");
  expect_contains(render_error("{{ 'ab' * 1000000000 }}"), "repetition would make");
}

TEST(JinjaErrors, RecursiveMacrosWithinTheBoundWork) {
  JinjaTemplate t(
      "{% macro count(n) %}{% if n > 0 %}{{ n }}{{ count(n - 1) }}{% endif %}{% endmacro %}"
      "{{ count(5) }}|{{ 3 ** 4 }}|{{ 2 ** 62 }}");
  EXPECT_EQ(t.render(jinja::Dict{}), "54321|81|4611686018427387904");
}

}  // namespace
}  // namespace rlaif
