// A reward server as the reward (algorithms/server_reward.h, io/reward_server.h), against a
// scoring server run by this test on loopback: the protocol's bodies, batching, retries after a
// 503, the cache a resumed run answers from, and the errors of a malformed answer.
#include "algorithms/server_reward.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>

#include <deque>
#include <mutex>
#include <thread>

#include "tests/error_of.h"
#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

using test::error_of;
using test::TempDir;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// POST /score: each item scores 1 when its completion equals its "answer" column, else 0, unless
// a scripted reply comes first (a status and a body).
class ScoreServer {
 public:
  struct Reply {
    int status = 200;
    std::string body;
  };

  ScoreServer() {
    server_.Post("/score", [this](const httplib::Request& request, httplib::Response& response) {
      Reply reply;
      {
        std::lock_guard lock(mutex_);
        bodies_.push_back(request.body);
        if (!script_.empty()) {
          reply = script_.front();
          script_.pop_front();
        }
      }
      if (reply.body.empty()) reply.body = answer(request.body);
      response.status = reply.status;
      response.set_content(reply.body, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("score server: cannot bind 127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~ScoreServer() {
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/score"; }
  void script(std::vector<Reply> replies) {
    std::lock_guard lock(mutex_);
    for (Reply& r : replies) script_.push_back(std::move(r));
  }
  std::vector<std::string> bodies() const {
    std::lock_guard lock(mutex_);
    return bodies_;
  }

 private:
  static std::string answer(const std::string& body) {
    rapidjson::Document doc;
    doc.Parse(body.c_str());
    std::string scores;
    for (const auto& item : doc["items"].GetArray()) {
      const bool right = std::string(item["completion"].GetString()) ==
                         std::string(item["columns"]["answer"].GetString());
      scores += std::string(scores.empty() ? "" : ",") + (right ? "1" : "0");
    }
    return "{\"scores\": [" + scores + "], \"note\": \"ignored\"}";
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mutex_;
  std::deque<Reply> script_;
  std::vector<std::string> bodies_;
};

struct Fixture {
  TempDir dir;
  std::string prompts = dir.file("prompts.jsonl");
  Fixture() {
    std::ofstream(prompts) << "{\"prompt\": \"sort: b a\", \"answer\": \"a b\", \"family\": "
                              "\"sort\"}\n"
                              "{\"prompt\": \"sort: d c\", \"answer\": \"c d\", \"family\": "
                              "\"sort\"}\n";
  }
  RewardServerOptions options(const ScoreServer& server, bool cache = false) const {
    RewardServerOptions o;
    o.url = server.url();
    o.items_per_request = 2;
    o.timeout_s = 5;
    o.max_attempts = 3;
    o.backoff_s = 0.01;
    o.max_backoff_s = 0.02;
    if (cache) o.cache_path = dir.file("reward_requests.jsonl");
    return o;
  }
};

const std::vector<std::string> kPrompts = {"sort: b a", "sort: d c", "sort: b a"};
const std::vector<std::string> kCompletions = {"a b", "d c", "b a"};

TEST(ServerReward, SendsItemsWithTheirColumnsAndReadsScoresInOrder) {
  Fixture f;
  ScoreServer server;
  ServerReward reward(f.options(server), PromptColumns::load(f.prompts));
  EXPECT_TRUE(reward.scores_on_lead_rank());
  EXPECT_EQ(reward.score(kPrompts, kCompletions), (std::vector<double>{1, 0, 0}));
  // Three items, at most two a request.
  const std::vector<std::string> bodies = server.bodies();
  ASSERT_EQ(bodies.size(), 2u);
  const std::string first =
      "{\"items\":[{\"prompt\":\"sort: b a\",\"completion\":\"a b\",\"columns\":{\"answer\":"
      "\"a b\",\"family\":\"sort\"}},{\"prompt\":\"sort: d c\",\"completion\":\"d c\","
      "\"columns\":{\"answer\":\"c d\",\"family\":\"sort\"}}]}";
  EXPECT_TRUE(bodies[0] == first || bodies[1] == first) << bodies[0] << "\n" << bodies[1];
  EXPECT_TRUE(contains(reward.client().usage_summary(), "2 requests (0 retried), 0 cached"));
}

TEST(ServerReward, RetriesAfterA503) {
  Fixture f;
  ScoreServer server;
  server.script({{503, "{\"error\": \"overloaded\"}"}});
  ServerReward reward(f.options(server), PromptColumns::load(f.prompts));
  EXPECT_EQ(reward.score({"sort: b a"}, {"a b"}), std::vector<double>{1});
  EXPECT_EQ(server.bodies().size(), 2u);  // the 503, then the answer
  EXPECT_EQ(server.bodies()[0], server.bodies()[1]);
  EXPECT_TRUE(contains(reward.client().usage_summary(), "2 requests (1 retried)"));
}

TEST(ServerReward, AResumedRunIsAnsweredFromTheCache) {
  Fixture f;
  ScoreServer server;
  std::vector<double> first;
  {
    ServerReward reward(f.options(server, true), PromptColumns::load(f.prompts));
    first = reward.score(kPrompts, kCompletions);
  }
  ASSERT_EQ(server.bodies().size(), 2u);
  // A new run, with the same cache file: the same scores and no request.
  ServerReward again(f.options(server, true), PromptColumns::load(f.prompts));
  EXPECT_EQ(again.score(kPrompts, kCompletions), first);
  EXPECT_EQ(server.bodies().size(), 2u);
  EXPECT_EQ(again.client().cached(), 2);
  EXPECT_EQ(again.client().requests_sent(), 0);
  // Items not asked before are sent.
  EXPECT_EQ(again.score({"sort: d c"}, {"c d"}), std::vector<double>{1});
  EXPECT_EQ(server.bodies().size(), 3u);
}

TEST(ServerReward, AMalformedAnswerIsAnErrorNamingTheUrlAndTheItem) {
  Fixture f;
  ScoreServer server;
  ServerReward reward(f.options(server), PromptColumns::load(f.prompts));
  auto error_for = [&](const std::string& body) {
    server.script({{200, body}});
    return error_of([&] { reward.score({"sort: b a", "sort: d c"}, {"a b", "x y"}); });
  };
  const size_t before = server.bodies().size();
  std::string e = error_for("{\"scores\": [1, \"0\"]}");
  EXPECT_TRUE(contains(e, "invalid response from " + server.url())) << e;
  EXPECT_TRUE(contains(e, "scores[1] is not a finite number")) << e;
  EXPECT_TRUE(contains(e, "item 2: the completion \"x y\" of the prompt \"sort: d c\"")) << e;
  EXPECT_EQ(server.bodies().size(), before + 1);  // not retried: it would answer the same
  e = error_for("{\"scores\": [1]}");
  EXPECT_TRUE(contains(e, "1 scores for 2 items")) << e;
  e = error_for("{\"scores\": [1, null]}");
  EXPECT_TRUE(contains(e, "scores[1] is not a finite number")) << e;
  e = error_for("scores: 1, 1");
  EXPECT_TRUE(contains(e, "not JSON")) << e;
  e = error_for("{\"score\": [1, 1]}");
  EXPECT_TRUE(contains(e, "no array \"scores\"")) << e;
  // A 4xx fails at once with the server's message.
  server.script({{400, "{\"error\": \"bad items\"}"}});
  e = error_of([&] { reward.score({"sort: b a"}, {"a b"}); });
  EXPECT_TRUE(contains(e, "HTTP 400 from " + server.url() + ": bad items")) << e;
  // A prompt the prompts file lacks.
  e = error_of([&] { reward.score({"sort: z y"}, {"y z"}); });
  EXPECT_TRUE(contains(e, f.prompts + ": no record has the prompt \"sort: z y\"")) << e;
}

TEST(ServerReward, TheUrlMustBeHttp) {
  RewardServerOptions o;
  o.url = "ftp://127.0.0.1/score";
  EXPECT_TRUE(contains(error_of([&] { RewardServerClient client(o); }),
                       "reward server ftp://127.0.0.1/score: not an http:// or https:// URL"));
}

}  // namespace
}  // namespace rlaif
