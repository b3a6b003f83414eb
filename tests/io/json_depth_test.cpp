// Hostile nesting: JSON nested far deeper than any real input is parsed without recursion and
// refused, with the file and line, by every reader of outside JSON (datasets, caches, chat
// template values, the server's request bodies), instead of overflowing the stack.
#include "io/json_depth.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "io/chat_template.h"
#include "io/jinja_json.h"
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

}  // namespace
}  // namespace rlaif
