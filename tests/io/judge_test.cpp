// The critic's templates and the strict parsing of its answers (io/judge.h).
#include "io/judge.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "runtime/error.h"
#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

TEST(FillTemplate, ReplacesKnownPlaceholdersOnceAndKeepsOtherBraces) {
  const std::string text = "{\"json\": {x}} I={instruction} A={output_1} B={output_2} {output_3}";
  std::string out = fill_template(
      text, {{"instruction", "use {output_2} here"}, {"output_1", "{}"}, {"output_2", "b}"}});
  // The instruction's "{output_2}" is not substituted again; unknown braces stay verbatim.
  EXPECT_EQ(out, "{\"json\": {x}} I=use {output_2} here A={} B=b} {output_3}");
}

TEST(FillTemplate, EveryOccurrenceAndPrefixNames) {
  // {output} must not swallow {output_1} and vice versa.
  EXPECT_EQ(fill_template("{output}{output_1}{output}", {{"output", "X"}, {"output_1", "Y"}}),
            "XYX");
  EXPECT_EQ(fill_template("{output", {{"output", "X"}}), "{output");
  EXPECT_EQ(fill_template("", {{"output", "X"}}), "");
  EXPECT_EQ(fill_template("{{instruction}}", {{"instruction", "I"}}), "{I}");
}

TEST(ParsePairwise, TableOfAnswers) {
  struct Case {
    const char* answer;
    PairVerdict want;
  };
  const Case cases[] = {
      {"Output (a)", PairVerdict::a},
      {"Output (b)", PairVerdict::b},
      {"  Output (a)\n", PairVerdict::a},
      {"output (B)", PairVerdict::b},
      {"OUTPUT (A).", PairVerdict::a},
      {"(a)", PairVerdict::a},
      {"(B)", PairVerdict::b},
      {"a", PairVerdict::a},
      {"B", PairVerdict::b},
      {"b.", PairVerdict::b},
      {"", PairVerdict::unparsed},
      {"   ", PairVerdict::unparsed},
      {"Output (c)", PairVerdict::unparsed},
      {"Output (a) because it is more accurate", PairVerdict::unparsed},
      {"I think Output (b)", PairVerdict::unparsed},
      {"Output (a) or Output (b)", PairVerdict::unparsed},
      {"Output a", PairVerdict::unparsed},
      {"Output (a)..", PairVerdict::unparsed},
      {"ab", PairVerdict::unparsed},
      {"Once upon a time, there was a little girl", PairVerdict::unparsed},
      // A reasoning model's thinking first: the verdict is what follows it.
      {"<think>a q v k</think>Output (b)", PairVerdict::b},
      {"<think>\nthe sum is 71\n</think>\n\nOutput (a).", PairVerdict::a},
      {"<think>a q v k</think>", PairVerdict::unparsed},
      {"<think>a q v k", PairVerdict::unparsed},  // cut off while thinking
      {"<think>x</think>Output (a) <think>y</think>", PairVerdict::unparsed},
      {"Output (a)<think>x</think>", PairVerdict::unparsed},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(parse_pairwise_answer(c.answer), c.want) << "answer: \"" << c.answer << "\"";
  }
}

TEST(ParseRating, TableOfAnswers) {
  struct Case {
    const char* answer;
    std::optional<int> want;
  };
  const Case cases[] = {
      {"7", 7},
      {"Rating: 7", 7},
      {"rating:10", 10},
      {" RATING:  1 \n", 1},
      {"10.", 10},
      {"Rating: 3.", 3},
      {"0", std::nullopt},
      {"11", std::nullopt},
      {"07", std::nullopt},
      {"-3", std::nullopt},
      {"7/10", std::nullopt},
      {"7.5", std::nullopt},
      {"Rating: seven", std::nullopt},
      {"Rating:", std::nullopt},
      {"", std::nullopt},
      {"I would rate it 7", std::nullopt},
      {"100", std::nullopt},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(parse_rating_answer(c.answer), c.want) << "answer: \"" << c.answer << "\"";
  }
}

TEST(PairOutcome, BothOrdersAgreementWinsDisagreementTies) {
  using O = PairOutcome;
  const std::vector<bool> both = {true, false};                           // X as (a), then Y as (a)
  EXPECT_EQ(pair_outcome({"Output (a)", "Output (b)"}, both), O::first);  // X both times
  EXPECT_EQ(pair_outcome({"(b)", "a"}, both), O::second);                 // Y both times
  EXPECT_EQ(pair_outcome({"Output (a)", "Output (a)"}, both), O::tie);    // always position (a)
  EXPECT_EQ(pair_outcome({"Output (b)", "Output (b)"}, both), O::tie);
  EXPECT_EQ(pair_outcome({"Output (a)", "I like both"}, both), O::unparsed);
  EXPECT_EQ(pair_outcome({"", "Output (b)"}, both), O::unparsed);
  EXPECT_THROW(pair_outcome({"a"}, both), Error);
}

TEST(PairOutcome, SingleOrderReadsTheLetterByPosition) {
  using O = PairOutcome;
  EXPECT_EQ(pair_outcome({"Output (a)"}, {true}), O::first);
  EXPECT_EQ(pair_outcome({"Output (b)"}, {true}), O::second);
  EXPECT_EQ(pair_outcome({"Output (a)"}, {false}), O::second);  // Y was (a)
  EXPECT_EQ(pair_outcome({"Output (b)"}, {false}), O::first);
  EXPECT_EQ(pair_outcome({"Output (b) is better"}, {false}), O::unparsed);
  EXPECT_STREQ(pair_outcome_name(O::tie), "tie");
}

TEST(WinRate, MeanAndStandardError) {
  // scores 1, 1, 0.5, 0: mean 0.625; deviations .375 .375 -.125 -.625, squares sum 0.6875;
  // sample variance 0.6875 / 3; standard error sqrt(0.6875 / 3 / 4) = 0.2393567...
  WinRate w = win_rate({1, 1, 0.5, 0});
  EXPECT_EQ(w.n, 4);
  EXPECT_DOUBLE_EQ(w.mean, 0.625);
  EXPECT_NEAR(w.standard_error, 0.23935677693908453, 1e-12);
  w = win_rate({0.5, 0.5, 0.5});
  EXPECT_DOUBLE_EQ(w.mean, 0.5);
  EXPECT_DOUBLE_EQ(w.standard_error, 0.0);
  w = win_rate({1});
  EXPECT_DOUBLE_EQ(w.mean, 1.0);
  EXPECT_TRUE(std::isnan(w.standard_error));
  w = win_rate({});
  EXPECT_EQ(w.n, 0);
  EXPECT_TRUE(std::isnan(w.mean));
}

TEST(PairRequests, OrdersAndPositions) {
  const JudgeTemplate t = JudgeTemplate::default_pairwise();
  auto shown = [](const CompletionRequest& r, const char* label) {
    const std::string& u = r.messages.back().content;
    const std::string head = std::string("## Output (") + label + "):\n";
    const size_t at = u.rfind(head) + head.size();
    return u.substr(at, u.find('\n', at) - at);
  };
  std::vector<bool> x_as_a;
  std::vector<CompletionRequest> r = pair_requests(t, "q", "X text", "Y text", true, "it", x_as_a);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(x_as_a, (std::vector<bool>{true, false}));
  EXPECT_EQ(shown(r[0], "a"), "X text");
  EXPECT_EQ(shown(r[0], "b"), "Y text");
  EXPECT_EQ(shown(r[1], "a"), "Y text");
  EXPECT_EQ(shown(r[1], "b"), "X text");
  EXPECT_NE(r[0].item, r[1].item);
  // One order: the position follows show_swapped, and x_as_a says which it was.
  for (const std::string x : {"x0", "x1", "x2", "x3", "x4", "x5"}) {
    r = pair_requests(t, "q", x, "Y", false, "it", x_as_a);
    ASSERT_EQ(r.size(), 1u);
    ASSERT_EQ(x_as_a.size(), 1u);
    EXPECT_EQ(x_as_a[0], !show_swapped(x, "Y"));
    EXPECT_EQ(shown(r[0], "a"), x_as_a[0] ? x : "Y");
    EXPECT_EQ(r[0].item, "it");
  }
}

TEST(ShowSwapped, FixedAndBalanced) {
  int swapped = 0;
  for (int i = 0; i < 400; ++i) {
    const std::string x = "answer " + std::to_string(i), y = "reference " + std::to_string(i);
    EXPECT_EQ(show_swapped(x, y), show_swapped(x, y));
    swapped += show_swapped(x, y);
  }
  // About half (binomial(400, 1/2): sd 10), so neither position is favoured.
  EXPECT_GT(swapped, 150);
  EXPECT_LT(swapped, 250);
}

TEST(JudgeTemplate, DefaultPairwiseRequest) {
  JudgeTemplate t = JudgeTemplate::default_pairwise();
  CompletionRequest r = t.pairwise_request("Say {hi}", "first {output_2}", "second", "pairs:3");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].role, "user");
  const std::string& u = r.messages[1].content;
  EXPECT_NE(u.find("## Instruction:\nSay {hi}\n"), std::string::npos);
  EXPECT_NE(u.find("## Output (a):\nfirst {output_2}\n"), std::string::npos);
  EXPECT_NE(u.find("## Output (b):\nsecond\n"), std::string::npos);
  EXPECT_EQ(u.find("{instruction}"), std::string::npos);
  EXPECT_EQ(r.temperature, 0.0);
  EXPECT_EQ(r.max_tokens, 16);
  EXPECT_EQ(r.item, "pairs:3");
  EXPECT_TRUE(r.prompt.empty());
  EXPECT_THROW(t.rating_request("i", "o", "x"), Error);
}

TEST(JudgeTemplate, DefaultRatingRequest) {
  JudgeTemplate t = JudgeTemplate::default_rating();
  t.set_max_tokens(5);
  CompletionRequest r = t.rating_request("Do it", "Done {output}", "rollout 0");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_NE(r.messages[1].content.find("## Response:\nDone {output}\n"), std::string::npos);
  EXPECT_EQ(r.max_tokens, 5);
  EXPECT_THROW(t.pairwise_request("i", "a", "b", "x"), Error);
}

TEST(JudgeTemplate, FromFileIsTheWholeUserMessage) {
  test::TempDir dir;
  const std::string path = dir.file("t.txt");
  std::ofstream(path) << "Q: {instruction}\n1: {output_1}\n2: {output_2}\n{\"answer\": ...}";
  JudgeTemplate t = JudgeTemplate::from_file(JudgeTemplate::Kind::pairwise, path);
  CompletionRequest r = t.pairwise_request("q", "x", "y", "i");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].content, "Q: q\n1: x\n2: y\n{\"answer\": ...}");
}

TEST(JudgeTemplate, MissingPlaceholderNamesFileAndPlaceholder) {
  test::TempDir dir;
  const std::string path = dir.file("bad.txt");
  std::ofstream(path) << "Q: {instruction}\n1: {output_1}\n";
  try {
    JudgeTemplate::from_file(JudgeTemplate::Kind::pairwise, path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("{output_2}"), std::string::npos) << e.what();
  }
  // The same text is a fine rating template only with {output}.
  EXPECT_THROW(JudgeTemplate::from_file(JudgeTemplate::Kind::rating, path), Error);
  EXPECT_THROW(JudgeTemplate::from_file(JudgeTemplate::Kind::rating, dir.file("missing.txt")),
               Error);
}

}  // namespace
}  // namespace rlaif
