// Hostile nesting: JSON nested far deeper than any real input is parsed without recursion and
// refused, with the file and line, by every reader of outside JSON (datasets, caches, chat
// template values, the server's request bodies), instead of overflowing the stack.
#include "io/json_depth.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "io/chat_template.h"
#include "io/jinja_json.h"
#include "io/json_exact.h"
#include "io/jsonl.h"
#include "io/openai_protocol.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;

std::string nested(size_t depth, const std::string& inner = "1") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

size_t depth_of(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.c_str());
  EXPECT_FALSE(doc.HasParseError()) << text.substr(0, 40);
  return json_depth(doc);
}

TEST(JsonDepth, CountsLevelsWithoutRecursion) {
  EXPECT_EQ(depth_of("3"), 0u);
  EXPECT_EQ(depth_of("[]"), 1u);
  EXPECT_EQ(depth_of(R"({"a": [1, {"b": [[2]]}], "c": 1})"), 5u);
  EXPECT_EQ(depth_of(nested(200000)), 200000u);  // iterative: no stack to overflow
}

TEST(JsonDepth, EveryReaderOfOutsideJsonRefusesHostileNesting) {
  const std::string deep = nested(100000);
  const std::string shallow_enough = nested(kMaxJsonDepth - 1);
  // A JSONL dataset or cache line: refused naming the file and line.
  const fs::path file =
      fs::temp_directory_path() / ("rlaif_json_depth_" + std::to_string(::getpid()) + ".jsonl");
  std::ofstream(file) << "{\"prompt\": \"ok\"}\n{\"x\": " << deep << "}\n";
  try {
    read_jsonl(file.string(), [](const rapidjson::Value&, int64_t) {});
    FAIL() << "a deeply nested line was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(file.string() + ":2: JSON nested deeper than 256"),
              std::string::npos)
        << e.what();
  }
  std::ofstream(file) << "{\"x\": " << shallow_enough << "}\n";
  EXPECT_NO_THROW(read_jsonl(file.string(), [](const rapidjson::Value&, int64_t) {}));
  fs::remove(file);
  // A chat template's JSON value.
  EXPECT_THROW(jinja::value_from_json_text(deep, "tools"), Error);
  EXPECT_NO_THROW(jinja::value_from_json_text(shallow_enough, "tools"));
  // A request body to the server: a 400, not a crash.
  const ChatTemplate chat = ChatTemplate::from_escaped("{prompt}");
  try {
    parse_api_request("{\"prompt\": \"hi\", \"stop\": " + deep + "}", Endpoint::completion, chat);
    FAIL() << "a deeply nested body was accepted";
  } catch (const ApiError& e) {
    EXPECT_NE(std::string(e.what()).find("deeper than 256"), std::string::npos) << e.what();
  }
}

// Numbers read exactly: doubles to their nearest value, integers typed as RapidJSON types them,
// and a zero significand with a large exponent to zero (RapidJSON 1.1's own exact mode reads
// "0e40" as a huge number).
TEST(JsonExact, NumbersReadExactly) {
  rapidjson::Document doc;
  ASSERT_FALSE(parse_json_exact(doc, R"([0e40, -0.000e99, 0.1, 1e-400, 18446744073709551616, -7, 7,
                               9223372036854775807, -9223372036854775808, 2.2250738585072014e-308])")
                   .IsError());
  const auto& a = doc.GetArray();
  EXPECT_EQ(a[0].GetDouble(), 0.0);
  EXPECT_EQ(a[1].GetDouble(), 0.0);
  EXPECT_TRUE(std::signbit(a[1].GetDouble()));
  EXPECT_EQ(a[2].GetDouble(), 0.1);
  EXPECT_EQ(a[3].GetDouble(), 0.0);
  EXPECT_TRUE(a[4].IsDouble());
  EXPECT_EQ(a[4].GetDouble(), 18446744073709551616.0);
  EXPECT_TRUE(a[5].IsInt());
  EXPECT_EQ(a[5].GetInt(), -7);
  EXPECT_TRUE(a[6].IsInt() && a[6].IsUint());
  EXPECT_EQ(a[7].GetInt64(), INT64_MAX);
  EXPECT_EQ(a[8].GetInt64(), INT64_MIN);
  EXPECT_EQ(a[9].GetDouble(), 2.2250738585072014e-308);
  const rapidjson::ParseResult bad = parse_json_exact(doc, "[1, 1e999]");
  EXPECT_EQ(bad.Code(), rapidjson::kParseErrorNumberTooBig);
  EXPECT_EQ(bad.Offset(), 4u);
  // Through the readers that use it: a JSONL record and a chat template value.
  EXPECT_EQ(jinja::value_to_json(jinja::value_from_json_text(R"({"x": 0e40})", "v")),
            R"({"x": 0.0})");
}

}  // namespace
}  // namespace rlaif
