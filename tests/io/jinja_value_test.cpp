// Python's printing and JSON rules as the template values reproduce them.
#include "io/jinja_value.h"

#include <gtest/gtest.h>

#include <cmath>

#include "io/jinja_json.h"
#include "runtime/error.h"

namespace rlaif::jinja {
namespace {

TEST(JinjaValue, FloatsPrintAsPythonRepr) {
  EXPECT_EQ(python_float_repr(1.0), "1.0");
  EXPECT_EQ(python_float_repr(0.1), "0.1");
  EXPECT_EQ(python_float_repr(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(python_float_repr(1e16), "1e+16");
  EXPECT_EQ(python_float_repr(123456789012345.6), "123456789012345.6");
  EXPECT_EQ(python_float_repr(1.5e-5), "1.5e-05");
  EXPECT_EQ(python_float_repr(0.0001), "0.0001");
  EXPECT_EQ(python_float_repr(-2.5e300), "-2.5e+300");
  EXPECT_EQ(python_float_repr(-0.0), "-0.0");
  EXPECT_EQ(python_float_repr(INFINITY), "inf");
}

TEST(JinjaValue, ReprAndTruthinessFollowPython) {
  Dict d;
  d.set("k", Value("it's"));
  d.set("n", Value::none());
  Value v(List{Value(1), Value(2.0), Value(true), Value(std::move(d)), Value(List{}, true)});
  EXPECT_EQ(v.str(), "[1, 2.0, True, {'k': \"it's\", 'n': None}, ()]");
  EXPECT_FALSE(Value("").truthy());
  EXPECT_FALSE(Value(List{}).truthy());
  EXPECT_FALSE(Value(0.0).truthy());
  EXPECT_FALSE(Value().truthy());
  EXPECT_TRUE(Value("0").truthy());
  EXPECT_TRUE(values_equal(Value(1), Value(1.0)));
  EXPECT_TRUE(values_equal(Value(true), Value(1)));
  EXPECT_FALSE(values_equal(Value("1"), Value(1)));
}

TEST(JinjaValue, JsonRoundTripKeepsTypesAndOrder) {
  Value v =
      value_from_json_text(R"({"b": 1, "a": [1.5, 2.0, null, true, "é\n\"x\""], "c": {}})", "test");
  EXPECT_EQ(value_to_json(v),
            "{\"b\": 1, \"a\": [1.5, 2.0, null, true, \"é\\n\\\"x\\\"\"], \"c\": {}}");
  JsonFormat indented;
  indented.indent = "  ";
  indented.sort_keys = true;
  EXPECT_EQ(value_to_json(v, indented),
            "{\n  \"a\": [\n    1.5,\n    2.0,\n    null,\n    true,\n    \"é\\n\\\"x\\\"\"\n  ],\n"
            "  \"b\": 1,\n  \"c\": {}\n}");
  EXPECT_THROW(value_to_json(Value()), rlaif::Error);
  JsonFormat ascii;
  ascii.ensure_ascii = true;
  ascii.item_separator = ",";
  ascii.key_separator = ":";
  EXPECT_EQ(value_to_json(value_from_json_text(R"({"k": ["é", "😀", 1]})", "test"), ascii),
            R"({"k":["\u00e9","\ud83d\ude00",1]})");
}

}  // namespace
}  // namespace rlaif::jinja
