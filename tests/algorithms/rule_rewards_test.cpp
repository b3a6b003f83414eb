// Rule rewards (algorithms/rule_rewards.h) on hand-worked completions, their weighted sum, the
// rule syntax and its errors, and the prompt -> columns map they read
// (algorithms/prompt_columns.h).
#include "algorithms/rule_rewards.h"

#include <gtest/gtest.h>

#include "io/hf_text.h"
#include "tests/error_of.h"
#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

using test::error_of;
using test::TempDir;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string write(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.file(name);
  std::ofstream(path) << text;
  return path;
}

TEST(RuleRewards, ExactMatchTrimsSurroundingWhitespaceOnly) {
  EXPECT_EQ(exact_match_reward("a b d", "a b d"), 1.0);
  EXPECT_EQ(exact_match_reward("a b d \n", "a b d"), 1.0);  // trailing whitespace
  EXPECT_EQ(exact_match_reward("\t a b d", " a b d\r\n"), 1.0);
  EXPECT_EQ(exact_match_reward("a b  d", "a b d"), 0.0);  // inner whitespace counts
  EXPECT_EQ(exact_match_reward("A b d", "a b d"), 0.0);   // so does case
  EXPECT_EQ(exact_match_reward("", "a"), 0.0);
  EXPECT_EQ(exact_match_reward("caf\xC3\xA9 ", "caf\xC3\xA9"), 1.0);  // "café"
  EXPECT_EQ(exact_match_reward("cafe\xCC\x81", "caf\xC3\xA9"), 0.0);  // bytes, not NFC
}

TEST(RuleRewards, RegexMatchesSomewhereUnlessAnchored) {
  const RewardRule sorted = parse_reward_rule("regex:^[a-z]( [a-z])*$");
  EXPECT_EQ(regex_reward("a b d", *sorted.re), 1.0);
  EXPECT_EQ(regex_reward("a b d.", *sorted.re), 0.0);
  const RewardRule anywhere = parse_reward_rule("regex:\\d{2,3}");  // a comma in the pattern
  EXPECT_EQ(regex_reward("it is 71.", *anywhere.re), 1.0);
  EXPECT_EQ(regex_reward("it is 7.", *anywhere.re), 0.0);
  // Unicode properties: \p{L} takes "é" as one letter.
  const RewardRule letters = parse_reward_rule("regex:^\\p{L}{4}$");
  EXPECT_EQ(regex_reward("caf\xC3\xA9", *letters.re), 1.0);
  // Malformed UTF-8 (a token cut mid-character) is matched as U+FFFD, not refused.
  EXPECT_EQ(regex_reward("\xFF"
                         "ok",
                         *parse_reward_rule("regex:ok$").re),
            1.0);
  EXPECT_EQ(regex_reward("\xFF", *parse_reward_rule("regex:^.$").re), 1.0);
}

TEST(RuleRewards, NumbersFollowTheDocumentedGrammar) {
  EXPECT_EQ(numbers_in("x -007.50, 3-2"), (std::vector<std::string>{"-7.5", "3", "2"}));
  EXPECT_EQ(numbers_in("1,234 and 1.5.2"), (std::vector<std::string>{"1", "234", "1.5", "2"}));
  EXPECT_EQ(numbers_in("a-3 (-4) -0 +5 1e3"),
            (std::vector<std::string>{"3", "-4", "0", "5", "1", "3"}));
  EXPECT_EQ(numbers_in("7. or .5"), (std::vector<std::string>{"7", "5"}));
  EXPECT_TRUE(numbers_in("no digits").empty());
  EXPECT_EQ(canonical_number(" 042 \n"), "42");
  EXPECT_EQ(canonical_number("-3.10"), "-3.1");
  EXPECT_EQ(canonical_number("0.000"), "0");
  for (const char* not_one : {"", "-", "+4", "4 2", "1e3", "1,000", "4.", ".5", "x"}) {
    EXPECT_FALSE(canonical_number(not_one).has_value()) << not_one;
  }
}

TEST(RuleRewards, NumberComparesTheLastNumberByValue) {
  EXPECT_EQ(number_reward("23 + 48 = 71", "71"), 1.0);
  EXPECT_EQ(number_reward("The sum is 7.5.", "7.50"), 1.0);  // 7.5 = 7.50
  EXPECT_EQ(number_reward("71.0", "071"), 1.0);
  EXPECT_EQ(number_reward("it is -3", "-3"), 1.0);  // negative
  EXPECT_EQ(number_reward("a-3", "-3"), 0.0);       // a letter before '-': 3, not -3
  EXPECT_EQ(number_reward("71 or 70", "71"), 0.0);  // the last number counts
  EXPECT_EQ(number_reward("1,234", "234"), 1.0);    // no thousands separators
  EXPECT_EQ(number_reward("-0", "0"), 1.0);
  EXPECT_EQ(number_reward("no number", "1"), 0.0);
  EXPECT_NE(error_of([] { number_reward("1", "one"); }).find("not a number"), std::string::npos);
}

TEST(RuleRewards, JsonIsOneValidValue) {
  EXPECT_EQ(json_reward("{\"a\": [1, 2]}"), 1.0);
  EXPECT_EQ(json_reward("  42 \n"), 1.0);  // a scalar is a JSON text (RFC 8259)
  EXPECT_EQ(json_reward("\"caf\xC3\xA9\""), 1.0);
  EXPECT_EQ(json_reward("null"), 1.0);
  EXPECT_EQ(json_reward("{\"a\": 1,}"), 0.0);  // trailing comma
  EXPECT_EQ(json_reward("{'a': 1}"), 0.0);
  EXPECT_EQ(json_reward(""), 0.0);
  EXPECT_EQ(json_reward("{} {}"), 0.0);  // two values
  EXPECT_EQ(json_reward("NaN"), 0.0);
  EXPECT_EQ(json_reward("\"\xFF\""), 0.0);  // not UTF-8
  EXPECT_EQ(json_reward("[1, 2"), 0.0);     // cut short
}

TEST(RuleRewards, LengthPenaltyCountsCodePointsPastTheLimit) {
  EXPECT_EQ(code_points("caf\xC3\xA9"), 4);
  EXPECT_EQ(code_points("a\xE2\x82"), 3);  // a cut 3-byte sequence: each byte counts once
  EXPECT_EQ(length_reward("abcd", 4), 0.0);
  EXPECT_EQ(length_reward("", 4), 0.0);
  EXPECT_EQ(length_reward("abcdef", 4), -0.5);    // -(6 - 4)/4
  EXPECT_EQ(length_reward("abcdefgh", 4), -1.0);  // -(8 - 4)/4
  // Six "é", 12 bytes: 6 code points, -(6 - 4)/4.
  EXPECT_EQ(length_reward("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 4), -0.5);
}

TEST(RuleRewards, SpecsParseKindArgumentAndWeight) {
  RewardRule r = parse_reward_rule("exact-match:answer");
  EXPECT_EQ(r.kind, RewardRuleKind::exact_match);
  EXPECT_EQ(r.column(), "answer");
  EXPECT_EQ(r.weight, 1.0);
  r = parse_reward_rule("length:64@0.1");
  EXPECT_EQ(r.kind, RewardRuleKind::length);
  EXPECT_EQ(r.length_limit, 64);
  EXPECT_EQ(r.weight, 0.1);
  r = parse_reward_rule("json@-2");
  EXPECT_EQ(r.kind, RewardRuleKind::json);
  EXPECT_EQ(r.weight, -2.0);
  r = parse_reward_rule("regex:a{1,2},b@0.5");  // commas stay in the pattern
  EXPECT_EQ(r.argument, "a{1,2},b");
  EXPECT_EQ(r.weight, 0.5);
  r = parse_reward_rule("regex:x@y");  // not a number after '@': part of the pattern
  EXPECT_EQ(r.argument, "x@y");
  EXPECT_EQ(r.weight, 1.0);
  r = parse_reward_rule("regex:x@2@1");
  EXPECT_EQ(r.argument, "x@2");
  EXPECT_EQ(r.weight, 1.0);
  EXPECT_EQ(parse_reward_rule("number:n").column(), "n");
  EXPECT_EQ(parse_reward_rule("regex:a").column(), "");
}

TEST(RuleRewards, BadSpecsSayWhatIsWrong) {
  auto error = [](const std::string& spec) { return error_of([&] { parse_reward_rule(spec); }); };
  EXPECT_TRUE(contains(error("exact:answer"), "unknown kind 'exact'"));
  EXPECT_TRUE(contains(error("exact:answer"), "exact-match:COL"));  // lists the kinds
  EXPECT_TRUE(contains(error("exact-match"), "needs the column"));
  EXPECT_TRUE(contains(error("number:"), "needs the column"));
  EXPECT_TRUE(contains(error("regex:"), "needs a pattern"));
  EXPECT_TRUE(contains(error("json:x"), "json takes no argument"));
  EXPECT_TRUE(contains(error("length:0"), "positive number"));
  EXPECT_TRUE(contains(error("length:1.5"), "positive number"));
  EXPECT_TRUE(contains(error("length:64@x"), "weight after '@' must be a finite number, got 'x'"));
  EXPECT_TRUE(contains(error("json@nan"), "finite number"));
  EXPECT_TRUE(contains(error("json@"), "finite number"));
  const std::string re = error("regex:ab(c");
  EXPECT_TRUE(contains(re, "reward 'regex:ab(c'")) << re;
  EXPECT_TRUE(contains(re, "at offset 4")) << re;  // the end of "ab(c": the ')' is missing
}

TEST(RuleRewards, WeightedSumOverRules) {
  TempDir dir;
  const std::string path = write(dir, "prompts.jsonl",
                                 "{\"prompt\": \"sort: b a\", \"answer\": \"a b\"}\n"
                                 "{\"prompt\": \"add: 2 3\", \"answer\": 5}\n");
  std::vector<RewardRule> rules = {parse_reward_rule("exact-match:answer@2"),
                                   parse_reward_rule("length:4@0.5"),
                                   parse_reward_rule("regex:^[a-z ]+$@-1")};
  RuleReward reward(rules, PromptColumns::load(path, std::vector<std::string>{"answer"}));
  const std::vector<double> s = reward.score({"sort: b a", "sort: b a", "add: 2 3", "add: 2 3"},
                                             {"a b", "b a c d", "5", "five five"});
  // "a b":     2·1 + 0.5·0               + (-1)·1 = 1
  // "b a c d": 2·0 + 0.5·(-(7 - 4)/4)    + (-1)·1 = -0.375 - 1 = -1.375
  // "5":       2·1 (the number's JSON text "5") + 0.5·0 + (-1)·0 = 2
  // "five five" (9 chars): 2·0 + 0.5·(-(9 - 4)/4) + (-1)·1 = -0.625 - 1 = -1.625
  EXPECT_EQ(s, (std::vector<double>{1.0, -1.375, 2.0, -1.625}));
  EXPECT_EQ(reward.rule_score(1, "sort: b a", "b a c d"), -0.75);
  EXPECT_FALSE(reward.scores_on_lead_rank());
  const std::string e = error_of([&] { reward.score({"sort: c a"}, {"a c"}); });
  EXPECT_TRUE(contains(e, path)) << e;
  EXPECT_TRUE(contains(e, "no record has the prompt \"sort: c a\"")) << e;
}

TEST(RuleRewards, AddToAnotherReward) {
  TempDir dir;
  const std::string path =
      write(dir, "prompts.jsonl", "{\"prompt\": \"sort: b a\", \"answer\": \"a b\"}\n");
  std::vector<std::unique_ptr<RewardFunction>> parts;
  // A stand-in for a reward model: the completion's length in bytes.
  parts.push_back(std::make_unique<FunctionReward>(
      [](const std::string&, const std::string& c) { return static_cast<double>(c.size()); }));
  parts.push_back(std::make_unique<RuleReward>(
      std::vector<RewardRule>{parse_reward_rule("exact-match:answer@0.5")},
      PromptColumns::load(path)));
  SumOfRewards sum(std::move(parts));
  // "a b": 3 + 0.5·1 = 3.5; "b a c": 5 + 0.5·0 = 5.
  EXPECT_EQ(sum.score({"sort: b a", "sort: b a"}, {"a b", "b a c"}),
            (std::vector<double>{3.5, 5.0}));
  EXPECT_FALSE(sum.scores_on_lead_rank());
  // With a part that scores on rank 0 (a critic, a reward server), the sum does too.
  std::vector<std::unique_ptr<RewardFunction>> lead;
  lead.push_back(std::make_unique<LeadRankScores>());
  lead.push_back(std::make_unique<RuleReward>(std::vector<RewardRule>{parse_reward_rule("json")},
                                              PromptColumns::load(path)));
  EXPECT_TRUE(SumOfRewards(std::move(lead)).scores_on_lead_rank());
}

TEST(RuleRewards, ColumnsMustBeThereAndBeNumbersForNumber) {
  TempDir dir;
  const std::string path = write(dir, "prompts.jsonl",
                                 "{\"prompt\": \"p1\", \"answer\": \"7\"}\n"
                                 "{\"prompt\": \"p2\", \"solution\": \"8\"}\n"
                                 "{\"prompt\": \"p3\", \"answer\": \"eight\"}\n");
  const std::string missing = error_of(
      [&] { RuleReward({parse_reward_rule("exact-match:answer")}, PromptColumns::load(path)); });
  EXPECT_TRUE(contains(missing, path + ":2: no column \"answer\"")) << missing;
  const std::string not_number = error_of([&] {
    RuleReward({parse_reward_rule("number:answer")},
               PromptColumns::load(write(dir, "n.jsonl",
                                         "{\"prompt\": \"p1\", \"answer\": \"7\"}\n"
                                         "{\"prompt\": \"p3\", \"answer\": \"eight\"}\n")));
  });
  EXPECT_TRUE(contains(not_number, ":2: column \"answer\" holds 'eight', not a number"))
      << not_number;
  const std::string wrong_type = error_of([&] {
    RuleReward(
        {parse_reward_rule("exact-match:answer")},
        PromptColumns::load(write(dir, "t.jsonl", "{\"prompt\": \"p\", \"answer\": [1]}\n")));
  });
  EXPECT_TRUE(contains(wrong_type, ":1: column \"answer\" must be a string or a number"))
      << wrong_type;
  // Rules without columns read none.
  RuleReward json({parse_reward_rule("json")},
                  PromptColumns::load(path, std::vector<std::string>{}));
  EXPECT_EQ(json.score({"p2"}, {"{}"}), std::vector<double>{1.0});
}

TEST(PromptColumns, SamePromptTwiceMustAgreeOnTheColumnsKept) {
  TempDir dir;
  const std::string path = write(dir, "prompts.jsonl",
                                 "{\"prompt\": \"p\", \"answer\": \"a\", \"id\": 1}\n"
                                 "{\"prompt\": \"q\", \"answer\": \"b\"}\n"
                                 "{\"prompt\": \"p\", \"answer\": \"a\", \"id\": 3}\n"
                                 "{\"prompt\": \"q\", \"answer\": \"c\"}\n");
  const std::string e =
      error_of([&] { PromptColumns::load(path, std::vector<std::string>{"answer"}); });
  EXPECT_TRUE(contains(e, path + ":2 and " + path + ":4 have the same prompt \"q\"")) << e;
  EXPECT_TRUE(contains(e, "different \"answer\" values: \"b\" and \"c\"")) << e;
  // Kept: "id" alone, where p's records differ.
  const std::string ids = error_of([&] { PromptColumns::load(path); });
  EXPECT_TRUE(contains(ids, ":1 and " + path + ":3")) << ids;
  EXPECT_TRUE(contains(ids, "\"id\" values: 1 and 3")) << ids;
  // Nothing kept: the same prompts, nothing to disagree on.
  const PromptColumns none = PromptColumns::load(path, std::vector<std::string>{});
  EXPECT_EQ(none.records().size(), 2u);
  const PromptColumns first_two = PromptColumns::load(
      write(dir, "ok.jsonl",
            "{\"prompt\": \"p\", \"answer\": \"a\"}\n{\"prompt\": \"p\", \"answer\": \"a\"}\n"));
  EXPECT_EQ(first_two.text("p", "answer"), "a");
  EXPECT_TRUE(contains(first_two.record("p").where, "ok.jsonl:1"));
}

}  // namespace
}  // namespace rlaif
