// Checkable tasks: every answer recomputed here from its prompt's text, the three families in
// about equal shares, the same seed giving the same tasks, near misses that are wrong but close,
// and the critic prompt in the pairwise template.
#include "algorithms/checkable_tasks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <sstream>

namespace rlaif {
namespace {

// The answer computed from the prompt alone, independently of the generator.
std::string solve(const std::string& prompt) {
  auto letters_of = [](const std::string& s, size_t skip) {
    std::string body = s.substr(skip, s.size() - skip - 1);  // drop the final '.'
    std::vector<std::string> letters;
    std::istringstream in(body);
    for (std::string w; in >> w;) letters.push_back(w);
    return letters;
  };
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
    return s;
  };
  if (prompt.starts_with("Reverse the letters ")) {
    auto v = letters_of(prompt, 20);
    std::reverse(v.begin(), v.end());
    return join(v);
  }
  if (prompt.starts_with("Sort the letters ")) {
    auto v = letters_of(prompt, 17);
    std::sort(v.begin(), v.end());
    return join(v);
  }
  int a = 0, b = 0;
  EXPECT_EQ(std::sscanf(prompt.c_str(), "What is %d + %d?", &a, &b), 2) << prompt;
  return std::to_string(a + b);
}

TEST(CheckableTasks, AnswersFollowFromThePrompts) {
  CheckableTaskGenerator gen(7);
  std::map<std::string, int> families;
  for (int i = 0; i < 3000; ++i) {
    const CheckableTask t = gen.next();
    ASSERT_EQ(t.answer, solve(t.prompt)) << t.prompt;
    ++families[t.family];
    if (t.family != "add") {
      const size_t letters = (t.answer.size() + 1) / 2;
      EXPECT_GE(letters, 3u);
      EXPECT_LE(letters, 5u);
    }
  }
  ASSERT_EQ(families.size(), 3u);
  for (const auto& [family, n] : families) EXPECT_NEAR(n, 1000, 120) << family;
}

TEST(CheckableTasks, SameSeedSameTasksOtherSeedOthers) {
  CheckableTaskGenerator a(3), b(3), c(4);
  int same_as_other_seed = 0;
  for (int i = 0; i < 100; ++i) {
    const CheckableTask x = a.next(), y = b.next(), z = c.next();
    EXPECT_EQ(x.prompt, y.prompt);
    same_as_other_seed += x.prompt == z.prompt;
  }
  EXPECT_LT(same_as_other_seed, 5);
}

TEST(CheckableTasks, WrongAnswersAreWrongAndMostlyClose) {
  CheckableTaskGenerator gen(11);
  int close_sums = 0, sums = 0;
  for (int i = 0; i < 4000; ++i) {
    const CheckableTask t = gen.next();
    const std::string wrong = gen.wrong_answer(t);
    ASSERT_NE(wrong, t.answer) << t.prompt;
    EXPECT_FALSE(exact_match(wrong, t.answer));
    if (t.family == "add") {
      const int diff = std::abs(std::stoi(wrong) - std::stoi(t.answer));
      close_sums += diff == 1 || diff == 2 || diff == 10;
      ++sums;
    } else {
      EXPECT_EQ(wrong.size(), t.answer.size()) << t.prompt << " -> " << wrong;  // same form
    }
  }
  // Three in four are near misses (a few unrelated sums land close by chance).
  EXPECT_NEAR(static_cast<double>(close_sums) / sums, 0.75, 0.05);
}

TEST(CheckableTasks, ExactMatchIgnoresSurroundingWhitespaceOnly) {
  EXPECT_TRUE(exact_match(" a b c\n", "a b c"));
  EXPECT_TRUE(exact_match("71", "71"));
  EXPECT_FALSE(exact_match("a  b c", "a b c"));
  EXPECT_FALSE(exact_match("71.", "71"));
  EXPECT_FALSE(exact_match("", "71"));
}

TEST(CheckableTasks, CriticAnswersCheckEachPositionThenGiveTheVerdict) {
  const CheckableTask t{"reverse", "Reverse the letters k v q a.", "a q v k"};
  EXPECT_EQ(critic_answer(t, "a q v k", "a v q k"),
            "<think>(a) aa= qq= vv= kk= (b) aa= qv! vq! kk=</think>Output (a)");
  EXPECT_EQ(critic_answer(t, "x q v", "a q v k"),
            "<think>(a) ax! qq= vv= k_! (b) aa= qq= vv= kk=</think>Output (b)");
  const CheckableTask sum{"add", "What is 23 + 48?", "71"};
  EXPECT_EQ(critic_answer(sum, "710", "71"),
            "<think>(a) 77= 11= _0! (b) 77= 11=</think>Output (b)");
}

TEST(CheckableTasks, CriticPromptFillsThePairwiseTemplateOnce) {
  // A value holding a placeholder is not filled again.
  EXPECT_EQ(compact_pairwise_prompt("What is 1 + 2?", "{output_2}", "3"),
            "Which output follows the instruction correctly?\n"
            "Instruction: What is 1 + 2?\n"
            "Output (a): {output_2}\n"
            "Output (b): 3");
}

}  // namespace
}  // namespace rlaif
