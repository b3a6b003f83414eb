// The LLM critic as a reward function (algorithms/critic_reward.h), against the io tests'
// fault-injecting OpenAI server on loopback with a scripted critic.
#include "algorithms/critic_reward.h"

#include <gtest/gtest.h>

#include "runtime/error.h"
#include "tests/io/fake_openai_server.h"

namespace rlaif {
namespace {

using test::FakeOpenAiServer;
using test::Fault;
using test::Reply;

ClientOptions options_for(const FakeOpenAiServer& server) {
  ClientOptions o;
  o.api_base = server.base_url();
  o.model = "critic";
  o.concurrency = 4;
  o.timeout_s = 5;
  o.max_attempts = 2;
  o.backoff_s = 0.01;
  o.max_backoff_s = 0.02;
  return o;
}

// The text between "## <heading>:\n" and the next blank line of a judge prompt.
std::string section(const std::string& prompt, const std::string& heading) {
  const std::string start = "## " + heading + ":\n";
  size_t at = prompt.rfind(start);  // the last one: the default template has a worked example
  if (at == std::string::npos) return "";
  at += start.size();
  return prompt.substr(at, prompt.find("\n\n", at) - at);
}

TEST(CriticReward, RatingIsTheParsedRatingOrTheDefault) {
  FakeOpenAiServer server;
  // The critic answers by the response: "great" 9, "fine" 6, anything else rambles.
  server.set_answer([](const std::string& prompt) -> std::string {
    const std::string response = section(prompt, "Response");
    if (response == "great") return "Rating: 9";
    if (response == "fine") return " 6\n";
    return "I would give it a 3 out of 10";
  });
  CriticRewardOptions o;
  o.mode = CriticMode::rating;
  CriticReward reward(options_for(server), o);
  std::vector<double> s = reward.score({"p1", "p2", "p3", "p4"}, {"great", "fine", "meh", "great"});
  EXPECT_EQ(s, (std::vector<double>{9, 6, 5.5, 9}));
  EXPECT_EQ(reward.judged(), 4);
  EXPECT_EQ(reward.unparsed(), 1);
  EXPECT_EQ(server.request_count(), 4u);

  o.unparsed_reward = 0.0;
  CriticReward strict(options_for(server), o);
  EXPECT_EQ(strict.score({"p3"}, {"meh"}), std::vector<double>{0.0});
}

// A critic that prefers the longer output, answering in the letter of the position it is shown.
std::string prefers_longer(const std::string& prompt) {
  const std::string a = section(prompt, "Output (a)"), b = section(prompt, "Output (b)");
  if (a == "confused" || b == "confused") return "Both are fine.";
  if (a.size() == b.size()) return "Output (a)";  // position bias on a tie
  return a.size() > b.size() ? "Output (a)" : "Output (b)";
}

TEST(CriticReward, PairwiseAgainstTheReferenceInBothOrders) {
  FakeOpenAiServer server;
  server.set_answer(prefers_longer);
  CriticRewardOptions o;
  o.mode = CriticMode::pairwise;
  o.both_orders = true;
  o.references = {{"q1", "medium"}, {"q2", "medium"}};
  CriticReward reward(options_for(server), o);
  // Longer than the reference wins (1), shorter loses (0), equal length is position bias in
  // both orders (a tie, 0.5), an unparsed answer scores the default 0.5 and is counted.
  std::vector<double> s =
      reward.score({"q1", "q1", "q2", "q2"}, {"much longer answer", "short", "abcdef", "confused"});
  EXPECT_EQ(s, (std::vector<double>{1.0, 0.0, 0.5, 0.5}));
  EXPECT_EQ(reward.unparsed(), 1);
  EXPECT_EQ(server.request_count(), 8u);  // two orders each
  EXPECT_THROW(reward.score({"unknown prompt"}, {"x"}), Error);
}

TEST(CriticReward, PairwiseSingleOrderReadsTheLetterOfEitherPosition) {
  FakeOpenAiServer server;
  server.set_answer(prefers_longer);
  CriticRewardOptions o;
  o.mode = CriticMode::pairwise;
  o.references = {{"q", "medium"}};
  CriticReward reward(options_for(server), o);
  // Enough completions that both presentation orders occur; the reward must not depend on it.
  std::vector<std::string> prompts, completions;
  std::vector<double> want;
  int swapped = 0;
  for (int i = 0; i < 12; ++i) {
    std::string c = (i % 2 ? "a much longer answer " : "s") + std::to_string(i);
    prompts.push_back("q");
    completions.push_back(c);
    want.push_back(c.size() > 6 ? 1.0 : 0.0);
    swapped += show_swapped(c, "medium");
  }
  ASSERT_GT(swapped, 0);
  ASSERT_LT(swapped, 12);
  EXPECT_EQ(reward.score(prompts, completions), want);
  EXPECT_EQ(server.request_count(), 12u);
}

TEST(CriticReward, AFailedRequestIsAnErrorNotADefault) {
  FakeOpenAiServer server;
  server.set_fallback(Reply{Fault::k400});
  CriticRewardOptions o;
  CriticReward reward(options_for(server), o);
  try {
    reward.score({"p"}, {"c"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("critic"), std::string::npos) << e.what();
  }
}

TEST(CriticReward, OptionsAreChecked) {
  FakeOpenAiServer server;
  CriticRewardOptions pairwise_without_references;
  pairwise_without_references.mode = CriticMode::pairwise;
  EXPECT_THROW(CriticReward(options_for(server), pairwise_without_references), Error);
  CriticRewardOptions mismatched;
  mismatched.mode = CriticMode::rating;
  mismatched.judge = JudgeTemplate::default_pairwise();
  EXPECT_THROW(CriticReward(options_for(server), mismatched), Error);
  EXPECT_EQ(parse_critic_mode("pairwise"), CriticMode::pairwise);
  EXPECT_THROW(parse_critic_mode("likert"), Error);
}

TEST(CriticReward, AtTheSpendingLimitScoringThrowsSpendLimitReached) {
  FakeOpenAiServer server;
  server.set_answer([](const std::string&) { return "Rating: 7"; });
  ClientOptions client = options_for(server);
  client.spend_limits.max_requests = 3;
  CriticReward reward(client, CriticRewardOptions{});
  EXPECT_EQ(reward.score({"p1", "p2"}, {"a", "b"}), (std::vector<double>{7, 7}));
  // Two more are needed, one may be sent: no score is made up for the other.
  EXPECT_THROW(reward.score({"p3", "p4"}, {"c", "d"}), SpendLimitReached);
  EXPECT_EQ(server.request_count(), 3u);
  EXPECT_EQ(reward.client().spent().requests, 3);
}

}  // namespace
}  // namespace rlaif
