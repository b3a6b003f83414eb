// The pair judges of algorithms/pair_judge.h: a scoring judge's verdicts, and an API critic asked
// in both orders (position bias is a tie), its answers cached.
#include "algorithms/pair_judge.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "runtime/error.h"
#include "tests/io/fake_openai_server.h"
#include "tests/support/temp_dir.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;
using test::FakeOpenAiServer;
using test::temp_dir;

// The text between "## <heading>:\n" and the next blank line of a judge prompt.
std::string section(const std::string& prompt, const std::string& heading) {
  const std::string start = "## " + heading + ":\n";
  size_t at = prompt.rfind(start);
  if (at == std::string::npos) return "";
  at += start.size();
  return prompt.substr(at, prompt.find("\n\n", at) - at);
}

// Prefers the longer output, in the letter of the position shown; equal lengths: always (a).
std::string prefers_longer(const std::string& prompt) {
  const std::string a = section(prompt, "Output (a)"), b = section(prompt, "Output (b)");
  if (a == "confused" || b == "confused") return "Both are fine.";
  if (a.size() == b.size()) return "Output (a)";
  return a.size() > b.size() ? "Output (a)" : "Output (b)";
}

ClientOptions options_for(const FakeOpenAiServer& server, const std::string& cache = "") {
  ClientOptions o;
  o.api_base = server.base_url();
  o.model = "critic";
  o.concurrency = 4;
  o.timeout_s = 5;
  o.max_attempts = 2;
  o.backoff_s = 0.01;
  o.max_backoff_s = 0.02;
  o.cache_path = cache;
  return o;
}

TEST(PairJudge, ScoreJudgeTheHigherScoreWinsAndEqualScoresTie) {
  FunctionReward length(
      [](const std::string&, const std::string& c) { return static_cast<double>(c.size()); });
  ScoreJudge judge(length);
  const std::vector<PairOutcome> v =
      judge.judge({"p", "p", "p"}, {"abc", "a", "ab"}, {"ab", "abc", "cd"});
  EXPECT_EQ(v,
            (std::vector<PairOutcome>{PairOutcome::first, PairOutcome::second, PairOutcome::tie}));
  EXPECT_EQ(judge.last_first_scores(), (std::vector<double>{3, 1, 2}));
  EXPECT_EQ(judge.last_second_scores(), (std::vector<double>{2, 3, 2}));
  EXPECT_THROW(judge.judge({"p"}, {"a", "b"}, {"c"}), Error);
}

TEST(PairJudge, CriticInBothOrdersTiesOnPositionBiasAndCachesItsAnswers) {
  FakeOpenAiServer server;
  server.set_answer(prefers_longer);
  const std::string dir = temp_dir("critic");
  fs::create_directories(dir);
  const std::string cache = dir + "/requests.jsonl";
  std::vector<PairOutcome> first_run;
  {
    CriticPairJudge judge(options_for(server, cache), JudgeTemplate::default_pairwise(), true);
    // Longer first wins, longer second wins, equal lengths are position bias in both orders (a
    // tie), a rambling critic is unparsed.
    first_run = judge.judge({"q", "q", "q", "q"}, {"longer one", "x", "abc", "confused"},
                            {"short", "much longer", "xyz", "y"});
    EXPECT_EQ(first_run, (std::vector<PairOutcome>{PairOutcome::first, PairOutcome::second,
                                                   PairOutcome::tie, PairOutcome::unparsed}));
    EXPECT_EQ(server.request_count(), 8u);  // two orders each
  }
  // A second judge on the same cache (a resumed run) asks nothing.
  CriticPairJudge again(options_for(server, cache), JudgeTemplate::default_pairwise(), true);
  EXPECT_EQ(again.judge({"q", "q", "q", "q"}, {"longer one", "x", "abc", "confused"},
                        {"short", "much longer", "xyz", "y"}),
            first_run);
  EXPECT_EQ(server.request_count(), 8u);
  EXPECT_THROW(CriticPairJudge(options_for(server), JudgeTemplate::default_rating(), false), Error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rlaif
