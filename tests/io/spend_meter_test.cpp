// The spending meter and the API client at its limits: never more requests than the limit, even
// with many in flight or many threads; the token limit stops at the response that crosses it;
// answers paid for are cached, so a re-run with a higher limit sends only the new requests; a
// response without usage is counted by estimate; a dry-run estimate counts only what the cache
// does not answer.
#include <gtest/gtest.h>

#include <atomic>
#include <sstream>
#include <thread>
#include <vector>

#include "io/llm_client.h"
#include "io/spend_estimate.h"
#include "io/spend_meter.h"
#include "tests/io/fake_openai_server.h"
#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

using test::FakeOpenAiServer;
using test::Fault;

ClientOptions limited_options(const std::string& base_url, const std::string& cache_path,
                              SpendLimits limits, int concurrency) {
  ClientOptions o;
  o.api_base = base_url;
  o.model = "fake-model";
  o.concurrency = concurrency;
  o.timeout_s = 5;
  o.max_attempts = 3;
  o.backoff_s = 0.01;
  o.max_backoff_s = 0.05;
  o.cache_path = cache_path;
  o.spend_limits = limits;
  return o;
}

// "question 10" .. "question 29": 11 bytes each, so every answer "echo: question NN" reports
// 11 prompt + 17 completion tokens (the fake server counts bytes).
std::vector<CompletionRequest> questions(int n) {
  std::vector<CompletionRequest> requests;
  for (int i = 0; i < n; ++i) {
    CompletionRequest r;
    r.messages = {{"user", "question " + std::to_string(10 + i)}};
    r.max_tokens = 8;
    requests.push_back(r);
  }
  return requests;
}

size_t count_lines(const std::string& path) {
  std::istringstream in(test::read_bytes(path));
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

TEST(SpendMeter, GrantsExactlyMaxRequestsAndSaysWhichLimitHolds) {
  SpendMeter meter({3, 0});
  EXPECT_EQ(meter.reached_limit(), "");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(meter.try_start_request());
  EXPECT_FALSE(meter.stopped_by_limit());  // reached, but nothing refused yet
  EXPECT_TRUE(meter.limit_reached());
  EXPECT_FALSE(meter.try_start_request());
  EXPECT_TRUE(meter.stopped_by_limit());
  EXPECT_EQ(meter.spent().requests, 3);
  EXPECT_EQ(meter.reached_limit(), "--max-requests 3 (3 sent)");
}

TEST(SpendMeter, TokenLimitRefusesOnceTheCountReachesIt) {
  SpendMeter meter({0, 100});
  EXPECT_TRUE(meter.try_start_request());
  meter.record_tokens(60, 39, false);  // 99: one more may start
  EXPECT_TRUE(meter.try_start_request());
  meter.record_tokens(1, 0, false);  // 100
  EXPECT_FALSE(meter.try_start_request());
  EXPECT_EQ(meter.reached_limit(), "--max-total-tokens 100 (100 counted)");
  const Spend s = meter.spent();
  EXPECT_EQ(s.requests, 2);
  EXPECT_EQ(s.prompt_tokens, 61);
  EXPECT_EQ(s.completion_tokens, 39);
  EXPECT_EQ(describe_spend(s), "2 requests, 61 prompt + 39 completion tokens (100 in all)");
  meter.record_tokens(3, 4, true);
  EXPECT_EQ(describe_spend(meter.spent()),
            "2 requests, 64 prompt + 43 completion tokens (107 in all), 1 responses without usage "
            "counted at 4 bytes a token");
}

TEST(SpendMeter, NoLimitGrantsEverythingAndNegativeLimitsAreRefused) {
  SpendMeter meter;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(meter.try_start_request());
  EXPECT_FALSE(meter.limit_reached());
  EXPECT_NE(test::error_of([] {
              SpendMeter m(SpendLimits{-1, 0});
            }).find("--max-requests"),
            std::string::npos);
  EXPECT_NE(test::error_of([] {
              SpendMeter m(SpendLimits{0, -5});
            }).find("--max-total-tokens"),
            std::string::npos);
  EXPECT_EQ(estimate_tokens(""), 0);
  EXPECT_EQ(estimate_tokens("abcd"), 1);
  EXPECT_EQ(estimate_tokens("abcde"), 2);
}

TEST(SpendMeter, ThreadsRacingForTheLastRequestsNeverPassTheLimit) {
  SpendMeter meter({500, 0});
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (meter.try_start_request()) {
          granted.fetch_add(1);
          meter.record_tokens(2, 1, false);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(granted.load(), 500);
  const Spend s = meter.spent();
  EXPECT_EQ(s.requests, 500);
  EXPECT_EQ(s.prompt_tokens, 1000);
  EXPECT_EQ(s.completion_tokens, 500);
  EXPECT_TRUE(meter.stopped_by_limit());
}

TEST(SpendLimitedClient, SendsExactlyMaxRequestsWithManyInFlightAndResumesFromTheCache) {
  test::TempDir dir;
  const std::string cache = dir.file("requests.jsonl");
  FakeOpenAiServer server;
  server.set_fallback({Fault::kNone, 0.02});
  const auto requests = questions(20);
  {
    LlmClient client(limited_options(server.base_url(), cache, {5, 0}, 8));
    size_t delivered = 0;
    const auto results =
        client.complete_all(requests, [&](size_t, const CompletionResult&) { ++delivered; });
    size_t ok = 0, unsent = 0;
    for (const CompletionResult& r : results) {
      ok += r.ok;
      unsent += !r.ok && r.error == kNotSentSpendLimit;
    }
    EXPECT_EQ(ok, 5u);
    EXPECT_EQ(unsent, 15u);
    EXPECT_EQ(delivered, 5u);  // items not sent get no on_result call
    EXPECT_EQ(server.request_count(), 5u);
    EXPECT_TRUE(client.stopped_by_spend_limit());
    EXPECT_EQ(client.reached_spend_limit(), "--max-requests 5 (5 sent)");
    const Spend s = client.spent();
    EXPECT_EQ(s.requests, 5);
    EXPECT_EQ(s.prompt_tokens, 5 * 11);
    EXPECT_EQ(s.completion_tokens, 5 * 17);
    EXPECT_EQ(client.usage().failed, 0);
  }
  EXPECT_EQ(count_lines(cache), 5u);  // every answer paid for is cached

  // A dry run now counts only the 15 the cache lacks.
  const SpendEstimate e = estimate_spend(requests, "fake-model", cache);
  EXPECT_EQ(e.requests, 15);
  EXPECT_EQ(e.cached, 5);
  EXPECT_EQ(e.prompt_tokens, 15 * 3);  // 11 bytes at 4 a token, rounded up
  EXPECT_EQ(e.max_completion_tokens, 15 * 8);

  // A higher limit: only new requests go out, up to it, none twice.
  LlmClient again(limited_options(server.base_url(), cache, {12, 0}, 8));
  const auto results = again.complete_all(requests);
  size_t ok = 0;
  for (const CompletionResult& r : results) ok += r.ok;
  EXPECT_EQ(ok, 17u);
  EXPECT_EQ(server.request_count(), 17u);
  EXPECT_TRUE(server.repeated_bodies().empty());
  EXPECT_EQ(again.spent().requests, 12);
  EXPECT_EQ(count_lines(cache), 17u);
}

TEST(SpendLimitedClient, TokenLimitStopsAtTheResponseThatCrossesIt) {
  FakeOpenAiServer server;
  // 28 tokens an answer: starts at 0, 28, 56 and 84 are under 100; at 112 nothing more starts.
  LlmClient client(limited_options(server.base_url(), "", {0, 100}, 1));
  const auto results = client.complete_all(questions(10));
  EXPECT_EQ(server.request_count(), 4u);
  EXPECT_EQ(client.spent().total_tokens(), 112);
  EXPECT_TRUE(client.stopped_by_spend_limit());
  for (size_t i = 0; i < results.size(); ++i) EXPECT_EQ(results[i].ok, i < 4) << i;
}

TEST(SpendLimitedClient, RetriesCountAsRequests) {
  FakeOpenAiServer server;
  server.script({{Fault::k500}});
  LlmClient client(limited_options(server.base_url(), "", {1, 0}, 1));
  const auto results = client.complete_all(questions(1));
  EXPECT_EQ(server.request_count(), 1u);
  ASSERT_FALSE(results[0].ok);
  EXPECT_EQ(results[0].error, kNotSentSpendLimit);  // its retry was never sent
  EXPECT_EQ(client.spent().requests, 1);
  EXPECT_EQ(client.spent().total_tokens(), 0);  // an error reply reports no usage
}

TEST(SpendLimitedClient, ResponsesWithoutUsageAreCountedByEstimate) {
  FakeOpenAiServer server;
  test::Reply no_usage;
  no_usage.usage = false;
  server.set_fallback(no_usage);
  LlmClient client(limited_options(server.base_url(), "", {}, 2));
  const auto requests = questions(3);
  const auto results = client.complete_all(requests);
  int64_t prompt = 0;
  for (const CompletionRequest& r : requests) {
    prompt += estimate_tokens(request_body(r, "fake-model"));
  }
  const Spend s = client.spent();
  EXPECT_EQ(s.estimated_responses, 3);
  EXPECT_EQ(s.prompt_tokens, prompt);
  EXPECT_EQ(s.completion_tokens, 3 * estimate_tokens("echo: question 10"));
  EXPECT_EQ(client.usage().prompt_tokens, 0);  // what the server reported: nothing
}

TEST(SpendEstimate, RepeatsInTheBatchAreFreeAndAMissingCacheIsEmpty) {
  test::TempDir dir;
  auto requests = questions(3);
  requests.push_back(requests[0]);
  const SpendEstimate e = estimate_spend(requests, "m", dir.file("absent/requests.jsonl"));
  EXPECT_EQ(e.requests, 3);
  EXPECT_EQ(e.cached, 1);
  EXPECT_FALSE(std::filesystem::exists(dir.file("absent")));  // a dry run creates nothing
}

}  // namespace
}  // namespace rlaif
