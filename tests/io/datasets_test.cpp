// Dataset loading: every SFT, preference and prompt format of io/datasets.h, from JSONL and from
// JSON arrays; the shipped files; and errors that name the file and line (or array index).
#include "io/datasets.h"

#include <gtest/gtest.h>

#include "io/chat_template.h"
#include "io/token_data.h"
#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

using test::error_of;
using test::TempDir;
using test::write_bytes;

struct DatasetFiles {
  TempDir dir;
  std::string write(const std::string& name, const std::string& text) {
    std::string path = dir.file(name);
    write_bytes(path, text);
    return path;
  }
};

// ---- SFT --------------------------------------------------------------------------------------

TEST(SftDatasets, PromptCompletionJsonlAndJsonArray) {
  DatasetFiles f;
  auto jsonl =
      load_sft_examples(f.write("a.jsonl",
                                "{\"prompt\": \"2+2?\", \"completion\": \"4\"}\n"
                                "\n"  // blank lines are skipped
                                "{\"prompt\": \"Hi\\n\", \"completion\": \"Hello \\u00e9\"}\n"));
  ASSERT_EQ(jsonl.size(), 2u);
  EXPECT_EQ(jsonl[0].prompt, "2+2?");
  EXPECT_EQ(jsonl[0].completion, "4");
  EXPECT_EQ(jsonl[1].prompt, "Hi\n");
  EXPECT_EQ(jsonl[1].completion, "Hello \xc3\xa9");
  auto array = load_sft_examples(
      f.write("a.json",
              "  [\n {\"prompt\": \"2+2?\", \"completion\": \"4\", \"extra\": 1},\n"
              " {\"prompt\": \"Hi\\n\", \"completion\": \"Hello \\u00e9\"}\n]\n"));
  ASSERT_EQ(array.size(), 2u);
  EXPECT_EQ(array[1].prompt, jsonl[1].prompt);
  EXPECT_EQ(array[1].completion, jsonl[1].completion);
}

TEST(SftDatasets, MessagesSingleTurnSystemAndMultiTurn) {
  DatasetFiles f;
  auto ex = load_sft_examples(f.write(
      "m.jsonl",
      R"({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]})"
      "\n"
      R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]})"
      "\n"
      R"({"messages": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}, {"role": "assistant", "content": "a2"}]})"
      "\n"));
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].prompt, "Q");
  EXPECT_EQ(ex[0].completion, "A");
  EXPECT_EQ(ex[1].prompt, "Be brief.\n\nQ");
  EXPECT_EQ(ex[1].completion, "A");
  EXPECT_EQ(ex[2].prompt, "u1\n\nAssistant: a1\n\nHuman: u2");
  EXPECT_EQ(ex[2].completion, "a2");
  // Through the default template the earlier turns read as one transcript.
  EXPECT_EQ(ChatTemplate().apply(ex[2].prompt),
            "Human: u1\n\nAssistant: a1\n\nHuman: u2\n\nAssistant: ");
}

TEST(SftDatasets, TrlConversationalPromptCompletion) {
  DatasetFiles f;
  auto ex = load_sft_examples(f.write(
      "c.jsonl",
      R"({"prompt": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}], "completion": [{"role": "assistant", "content": "a2"}]})"
      "\n"));
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].prompt, "u1\n\nAssistant: a1\n\nHuman: u2");
  EXPECT_EQ(ex[0].completion, "a2");
}

TEST(SftDatasets, AlpacaWithAndWithoutInputSystemAndHistory) {
  DatasetFiles f;
  auto ex = load_sft_examples(
      f.write("alpaca.json",
              R"([{"instruction": "Translate.", "input": "bonjour", "output": "hello"},
          {"instruction": "Name a colour.", "input": "", "output": "red"},
          {"instruction": "Name a fruit.", "output": "apple"},
          {"instruction": "And another?", "input": "", "output": "pear", "system": "Be brief.",
           "history": [["Name a fruit.", "apple"]]}])"));
  ASSERT_EQ(ex.size(), 4u);
  EXPECT_EQ(ex[0].prompt, "Translate.\n\nbonjour");
  EXPECT_EQ(ex[0].completion, "hello");
  EXPECT_EQ(ex[1].prompt, "Name a colour.");
  EXPECT_EQ(ex[2].prompt, "Name a fruit.");
  EXPECT_EQ(ex[2].completion, "apple");
  EXPECT_EQ(ex[3].prompt, "Be brief.\n\nName a fruit.\n\nAssistant: apple\n\nHuman: And another?");
  EXPECT_EQ(ex[3].completion, "pear");
}

// A NUL byte is no JSON text: the parser would read it as the end, ignoring what follows (or
// blaming a quote), so it is an error naming the file and line. An escaped \u0000 inside a string
// is JSON, and stays in the text with what follows it.
TEST(SftDatasets, NulBytesAreErrorsAndEscapedNulsStayInTheText) {
  DatasetFiles f;
  using namespace std::string_literals;
  std::string path =
      f.write("after.json", "[{\"prompt\": \"a\", \"completion\": \"b\"}]\n\0[junk"s);
  std::string msg = error_of([&] { load_sft_examples(path); });
  EXPECT_NE(msg.find(path + ":2: a NUL byte"), std::string::npos) << msg;
  path = f.write("inside.jsonl",
                 "{\"prompt\": \"a\", \"completion\": \"b\"}\n"
                 "{\"prompt\": \"x\0y\", \"completion\": \"b\"}\n"s);
  msg = error_of([&] { load_sft_examples(path); });
  EXPECT_NE(msg.find(path + ":2: a NUL byte at column 14"), std::string::npos) << msg;

  auto ex = load_sft_examples(f.write(
      "escaped.json",
      R"([{"instruction": "q\u0000r", "output": "o\u0000p", "history": [["h\u0000i", "a\u0000b"]]}])"));
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].prompt, "h\0i\n\nAssistant: a\0b\n\nHuman: q\0r"s);
  EXPECT_EQ(ex[0].completion, "o\0p"s);
}

TEST(SftDatasets, ShippedAlpacaDemoLoads) {
  auto ex = load_sft_examples(test::data_path("instructions/alpaca_en_demo.json"));
  ASSERT_EQ(ex.size(), 999u);
  for (const auto& e : ex) {
    ASSERT_FALSE(e.prompt.empty());
    ASSERT_FALSE(e.completion.empty());
  }
}

TEST(SftDatasets, ErrorsNameTheFileAndLine) {
  DatasetFiles f;
  std::string path =
      f.write("bad.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\"}\n");
  std::string msg = error_of([&] { load_sft_examples(path); });
  EXPECT_NE(msg.find(path + ":2: not an SFT record"), std::string::npos) << msg;

  path = f.write("syntax.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\"}\n\n{\"prompt\": \n");
  msg = error_of([&] { load_sft_examples(path); });
  EXPECT_NE(msg.find(path + ":3:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("invalid JSON"), std::string::npos) << msg;

  path = f.write("bad.json", R"([{"prompt": "a", "completion": "b"}, {"instruction": "x"}])");
  msg = error_of([&] { load_sft_examples(path); });
  EXPECT_NE(msg.find(path + "[1]: not an SFT record"), std::string::npos) << msg;

  path = f.write("notobj.json", R"([{"prompt": "a", "completion": "b"}, 3])");
  msg = error_of([&] { load_sft_examples(path); });
  EXPECT_NE(msg.find(path + "[1]: each record must be a JSON object"), std::string::npos) << msg;

  path = f.write("syntax.json",
                 "[\n{\"prompt\": \"a\", \"completion\": \"b\"},\n{\"prompt\" \"a\"}\n]");
  msg = error_of([&] { load_sft_examples(path); });
  EXPECT_NE(msg.find(path + ":3: invalid JSON"), std::string::npos) << msg;

  path = f.write(
      "role.jsonl",
      R"({"messages": [{"role": "human", "content": "Q"}, {"role": "assistant", "content": "A"}]})"
      "\n");
  msg = error_of([&] { load_sft_examples(path); });
  EXPECT_NE(msg.find(path + ":1: unknown role \"human\""), std::string::npos) << msg;

  path = f.write("end.jsonl", R"({"messages": [{"role": "user", "content": "Q"}]})"
                              "\n");
  msg = error_of([&] { load_sft_examples(path); });
  EXPECT_NE(msg.find(path + ":1: the conversation must end with an assistant turn"),
            std::string::npos)
      << msg;

  path = f.write(
      "alternate.jsonl",
      R"({"messages": [{"role": "user", "content": "Q"}, {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A"}]})"
      "\n");
  msg = error_of([&] { load_sft_examples(path); });
  EXPECT_NE(msg.find(path + ":1: turns must alternate"), std::string::npos) << msg;

  path = f.write(
      "content.jsonl",
      R"({"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "A"}]})"
      "\n");
  msg = error_of([&] { load_sft_examples(path); });
  EXPECT_NE(msg.find(path + ":1: missing string field \"content\""), std::string::npos) << msg;

  path = f.write("history.json",
                 R"([{"instruction": "x", "output": "y", "history": [["only one"]]}])");
  msg = error_of([&] { load_sft_examples(path); });
  EXPECT_NE(msg.find(path + "[0]: each \"history\" entry"), std::string::npos) << msg;

  path = f.write("empty.jsonl", "\n\n");
  msg = error_of([&] { load_sft_examples(path); });
  EXPECT_NE(msg.find(path + ": no examples"), std::string::npos) << msg;

  msg = error_of([&] { load_sft_examples(f.dir.file("missing.jsonl")); });
  EXPECT_NE(msg.find("cannot open"), std::string::npos) << msg;
}

// ---- Preferences ------------------------------------------------------------------------------

TEST(PreferenceDatasets, PromptChosenRejectedJsonlAndJsonArray) {
  DatasetFiles f;
  const std::string record =
      R"({"prompt": "P", "chosen": "good", "rejected": "bad", "critic": {"score": 3}})";
  std::string lines = record;
  lines += '\n';
  std::string array = "[";
  array += record;
  array += ']';
  for (const std::string& path : {f.write("p.jsonl", lines), f.write("p.json", array)}) {
    auto pairs = load_preferences(path);
    ASSERT_EQ(pairs.size(), 1u) << path;
    EXPECT_EQ(pairs[0].prompt, "P");
    EXPECT_EQ(pairs[0].chosen, "good");
    EXPECT_EQ(pairs[0].rejected, "bad");
  }
}

TEST(PreferenceDatasets, LlamaFactorySingleAndMultiTurn) {
  DatasetFiles f;
  auto pairs = load_preferences(f.write("lf.json", R"([
    {"conversations": [{"from": "human", "value": "Q"}],
     "chosen": {"from": "gpt", "value": "good"}, "rejected": {"from": "gpt", "value": "bad"}},
    {"conversations": [{"from": "human", "value": "u1"}, {"from": "gpt", "value": "a1"},
                       {"from": "human", "value": "u2"}],
     "chosen": {"from": "gpt", "value": "good2"}, "rejected": {"from": "gpt", "value": "bad2"}}
  ])"));
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].prompt, "Q");
  EXPECT_EQ(pairs[0].chosen, "good");
  EXPECT_EQ(pairs[0].rejected, "bad");
  EXPECT_EQ(pairs[1].prompt, "u1\n\nAssistant: a1\n\nHuman: u2");
  EXPECT_EQ(pairs[1].chosen, "good2");
  EXPECT_EQ(pairs[1].rejected, "bad2");
}

TEST(PreferenceDatasets, TrlConversationalImplicitAndExplicitPrompt) {
  DatasetFiles f;
  auto pairs = load_preferences(f.write(
      "trl.jsonl",
      R"({"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "good"}], "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "bad"}]})"
      "\n"
      R"({"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}], "chosen": [{"role": "assistant", "content": "good"}], "rejected": [{"role": "assistant", "content": "bad"}]})"
      "\n"));
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].prompt, "Q");
  EXPECT_EQ(pairs[0].chosen, "good");
  EXPECT_EQ(pairs[0].rejected, "bad");
  EXPECT_EQ(pairs[1].prompt, "S\n\nQ");
  EXPECT_EQ(pairs[1].chosen, "good");
  EXPECT_EQ(pairs[1].rejected, "bad");
}

TEST(PreferenceDatasets, ShippedDpoDemoLoads) {
  auto pairs = load_preferences(test::data_path("preferences/dpo_en_demo.json"));
  ASSERT_EQ(pairs.size(), 300u);
  for (const auto& p : pairs) {
    ASSERT_FALSE(p.prompt.empty());
    ASSERT_FALSE(p.chosen.empty());
    ASSERT_FALSE(p.rejected.empty());
  }
}

TEST(PreferenceDatasets, ErrorsNameTheRecord) {
  DatasetFiles f;
  std::string path = f.write("nochosen.jsonl",
                             "{\"prompt\": \"P\", \"chosen\": \"c\", \"rejected\": \"r\"}\n"
                             "{\"prompt\": \"P\", \"chosen\": \"c\"}\n");
  std::string msg = error_of([&] { load_preferences(path); });
  EXPECT_NE(msg.find(path + ":2: a preference record needs \"chosen\" and \"rejected\""),
            std::string::npos)
      << msg;

  path = f.write("noprompt.json", R"([{"chosen": "c", "rejected": "r"}])");
  msg = error_of([&] { load_preferences(path); });
  EXPECT_NE(msg.find(path + "[0]: a preference record needs \"prompt\" or \"conversations\""),
            std::string::npos)
      << msg;

  path = f.write(
      "differ.jsonl",
      R"({"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "g"}], "rejected": [{"role": "user", "content": "Other"}, {"role": "assistant", "content": "b"}]})"
      "\n");
  msg = error_of([&] { load_preferences(path); });
  EXPECT_NE(msg.find(path + ":1: chosen and rejected conversations differ"), std::string::npos)
      << msg;

  path = f.write("badtype.jsonl", "{\"prompt\": \"P\", \"chosen\": 1, \"rejected\": \"r\"}\n");
  msg = error_of([&] { load_preferences(path); });
  EXPECT_NE(msg.find(path + ":1: \"chosen\" must be"), std::string::npos) << msg;
}

// ---- Prompts ----------------------------------------------------------------------------------

TEST(PromptDatasets, PromptFieldsMessagesAndInstructions) {
  DatasetFiles f;
  auto prompts = load_prompts(f.write(
      "p.jsonl",
      "{\"prompt\": \"one\"}\n"
      R"({"prompt": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}]})"
      "\n"
      "{\"instruction\": \"do\", \"input\": \"this\", \"output\": \"ignored\"}\n"));
  ASSERT_EQ(prompts.size(), 3u);
  EXPECT_EQ(prompts[0], "one");
  EXPECT_EQ(prompts[1], "u1\n\nAssistant: a1\n\nHuman: u2");
  EXPECT_EQ(prompts[2], "do\n\nthis");
}

TEST(PromptDatasets, ShippedAlpacaEvalLoads) {
  auto prompts = load_prompts(test::data_path("eval/alpaca_eval.json"));
  ASSERT_EQ(prompts.size(), 805u);
  EXPECT_EQ(prompts[0],
            "What are the names of some famous actors that started their careers on Broadway?");
}

TEST(PromptDatasets, ErrorsNameTheRecord) {
  DatasetFiles f;
  std::string path = f.write("p.jsonl", "{\"prompt\": \"one\"}\n{\"text\": \"two\"}\n");
  std::string msg = error_of([&] { load_prompts(path); });
  EXPECT_NE(msg.find(path + ":2: missing string field \"prompt\""), std::string::npos) << msg;
  path = f.write("p.json", "[{\"prompt\": \"one\"}, {\"prompt\": 2}]");
  msg = error_of([&] { load_prompts(path); });
  EXPECT_NE(msg.find(path + "[1]: missing string field \"prompt\""), std::string::npos) << msg;
}

// ---- Token shards -------------------------------------------------------------------------------

// A shard's declared token count is checked against the file before it is allocated.
TEST(TokenShards, RoundTripAndCountsPastTheFileAreRefused) {
  DatasetFiles f;
  const std::string path = f.dir.file("tokens.bin");
  write_token_shard(path, {0, 7, 65535});
  EXPECT_TRUE(is_token_shard(path));
  EXPECT_EQ(read_token_shard(path), (std::vector<int32_t>{0, 7, 65535}));

  std::string bytes = test::read_bytes(path);
  const int32_t huge = 2'000'000'000;
  bytes.replace(8, 4, reinterpret_cast<const char*>(&huge), 4);
  const std::string bad = f.write("huge.bin", bytes);
  std::string e = error_of([&] { read_token_shard(bad); });
  EXPECT_NE(e.find(bad + ": header promises 2000000000 tokens but the file holds 3"),
            std::string::npos)
      << e;
  const std::string short_file = f.write("short.bin", bytes.substr(0, 100));
  e = error_of([&] { read_token_shard(short_file); });
  EXPECT_NE(e.find("shorter than the 1024-byte shard header"), std::string::npos) << e;
}

}  // namespace
}  // namespace rlaif
