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
  // Integer arithmetic wraps past 64 bits instead of overflowing (INT64_MIN // -1 traps on x86).
  const std::string min = "(-9223372036854775807 - 1)";
  EXPECT_EQ(
      JinjaTemplate("{{ 9223372036854775807 + 1 }} {{ " + min + " // -1 }} {{ " + min +
                    " % -1 }} {{ -" + min + " }} {{ " + min + "|abs }} {{ [" + min + ", -1]|sum }}")
          .render(jinja::Dict{}),
      "-9223372036854775808 -9223372036854775808 0 -9223372036854775808 "
      "-9223372036854775808 9223372036854775807");
  // Numbers past int64: an Error naming them, never a std::out_of_range or an undefined cast.
  expect_contains(parse_error("\n{{ x.18446744073709551615 }}"),
                  "line 2: index .18446744073709551615 is out of range");
  expect_contains(render_error("{{ 1e300|int }}"), "int: 1e+300 does not fit in a 64-bit integer");
  expect_contains(render_error("{{ '-1e300'|int }}"), "does not fit in a 64-bit integer");
  expect_contains(render_error("{{ [1]|map(attribute='99999999999999999999')|list }}"),
                  "index 99999999999999999999 is out of range");
  expect_contains(render_error("{{ '{99999999999999999999}'.format(1) }}"),
                  "str.format: no argument 99999999999999999999");
}

TEST(JinjaErrors, RecursiveMacrosWithinTheBoundWork) {
  JinjaTemplate t(
      "{% macro count(n) %}{% if n > 0 %}{{ n }}{{ count(n - 1) }}{% endif %}{% endmacro %}"
      "{{ count(5) }}|{{ 3 ** 4 }}|{{ 2 ** 62 }}");
  EXPECT_EQ(t.render(jinja::Dict{}), "54321|81|4611686018427387904");
}

TEST(JinjaErrors, HostileTemplatesStopWithAnErrorNotAHangOrACrash) {
  auto repeat = [](const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
  };
  // Nesting far past any real template: an error naming the line, not a stack overflow.
  expect_contains(parse_error("{{ " + repeat("(", 100000) + "1" + repeat(")", 100000) + " }}"),
                  "line 1: the template nests deeper than 256 levels");
  expect_contains(parse_error("{{ " + repeat("[", 100000) + "1" + repeat("]", 100000) + " }}"),
                  "nests deeper than 256");
  expect_contains(parse_error("{{ " + repeat("not ", 100000) + "x }}"), "nests deeper than 256");
  expect_contains(parse_error("{{ " + repeat("-", 100000) + "1 }}"), "nests deeper than 256");
  expect_contains(parse_error(repeat("{% if x %}", 100000)), "nests deeper than 256");
  // Within the bound, nesting renders.
  EXPECT_EQ(JinjaTemplate("{{ " + repeat("(", 200) + "7" + repeat(")", 200) + " }}")
                .render(jinja::Dict{}),
            "7");
  // Loops within loops, and output that grows without bound: stopped at the render's limits,
  // naming the line (small limits here; the defaults, 10 million iterations and 64 MiB, stop the
  // same templates, only later).
  jinja::RenderLimits limits;
  limits.max_iterations = 10000;
  limits.max_output_bytes = 1 << 20;
  const std::string loops =
      "{% for i in range(100000) %}\n{% for j in range(100000) %}{% endfor %}{% endfor %}";
  expect_contains(test::error_of([&] { JinjaTemplate(loops).render(jinja::Dict{}, limits); }),
                  "line 2: the template runs more than 10000 loop iterations");
  const std::string grows = "{% for i in range(1000) %}{{ 'x' * 100000 }}{% endfor %}";
  expect_contains(test::error_of([&] { JinjaTemplate(grows).render(jinja::Dict{}, limits); }),
                  "the rendered text exceeds 1048576 bytes");
  EXPECT_EQ(jinja::RenderLimits{}.max_iterations, 10'000'000);
  EXPECT_EQ(jinja::RenderLimits{}.max_output_bytes, size_t{64} << 20);
  // A real template's work stays far inside the limits: 500 messages of 20 parts each.
  const std::string chat =
      "{% for m in range(500) %}{% for p in range(20) %}{{ p }}{% endfor %}{% endfor %}";
  EXPECT_NO_THROW(JinjaTemplate(chat).render(jinja::Dict{}, jinja::RenderLimits{}));
}

}  // namespace
}  // namespace rlaif
