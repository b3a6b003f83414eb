// The LLM client against the fault-injecting server on loopback: answers, every fault retried or
// failed as specified, concurrency and the rate limit, the API key's confinement, option checks.
// The request cache's crash safety is in llm_client_cache_test.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "io/llm_client.h"
#include "tests/io/fake_openai_server.h"
#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

using test::FakeOpenAiServer;
using test::Fault;
using test::Reply;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Short backoffs and timeouts: the tests wait for real.
ClientOptions fast_options(const FakeOpenAiServer& server) {
  ClientOptions o;
  o.api_base = server.base_url();
  o.model = "fake-model";
  o.concurrency = 4;
  o.timeout_s = 5;
  o.max_attempts = 4;
  o.backoff_s = 0.01;
  o.max_backoff_s = 0.05;
  return o;
}

CompletionRequest chat(const std::string& prompt, const std::string& item = "") {
  CompletionRequest r;
  r.messages = {{"system", "You are terse."}, {"user", prompt}};
  r.max_tokens = 16;
  r.item = item;
  return r;
}

CompletionRequest plain(const std::string& prompt) {
  CompletionRequest r;
  r.prompt = prompt;
  r.max_tokens = 16;
  return r;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(LlmClient, AnswersInRequestOrderWithUsage) {
  FakeOpenAiServer server;
  LlmClient client(fast_options(server));
  std::vector<CompletionRequest> requests = {chat("one"), plain("two"), chat("three"),
                                             plain("four"), chat("five")};
  std::vector<size_t> seen;
  auto caller = std::this_thread::get_id();
  auto results = client.complete_all(requests, [&](size_t i, const CompletionResult& r) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_TRUE(r.ok);
    seen.push_back(i);
  });
  ASSERT_EQ(results.size(), requests.size());
  int64_t prompt_tokens = 0, completion_tokens = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    std::string prompt =
        requests[i].messages.empty() ? requests[i].prompt : requests[i].messages.back().content;
    EXPECT_TRUE(results[i].ok) << results[i].error;
    EXPECT_EQ(results[i].text, "echo: " + prompt);
    EXPECT_EQ(results[i].finish_reason, "stop");
    EXPECT_EQ(results[i].attempts, 1);
    EXPECT_FALSE(results[i].from_cache);
    EXPECT_EQ(results[i].prompt_tokens, static_cast<int64_t>(prompt.size()));
    prompt_tokens += static_cast<int64_t>(prompt.size());
    completion_tokens += static_cast<int64_t>(results[i].text.size());
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<size_t>{0, 1, 2, 3, 4}));
  // Chat requests went to /chat/completions, prompts to /completions, each with its own body.
  auto received = server.received();
  ASSERT_EQ(received.size(), 5u);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(server.count_body(request_body(requests[i], "fake-model")), 1u) << i;
  }
  for (const auto& r : received) {
    EXPECT_EQ(r.path,
              contains(r.body, "\"messages\"") ? "/v1/chat/completions" : "/v1/completions");
    EXPECT_EQ(r.authorization, "");  // no key, no header
  }
  EXPECT_EQ(client.usage().requests_sent, 5);
  EXPECT_EQ(client.usage().prompt_tokens, prompt_tokens);
  EXPECT_EQ(client.usage().completion_tokens, completion_tokens);
  EXPECT_EQ(client.usage_summary(), "5 requests (0 retried), 0 cached; " +
                                        std::to_string(prompt_tokens) + " prompt + " +
                                        std::to_string(completion_tokens) + " completion tokens");
}

TEST(LlmClient, RetriesA429AfterItsRetryAfter) {
  FakeOpenAiServer server;
  server.script({{Fault::k429, 0, "1"}});
  ClientOptions o = fast_options(server);
  o.max_backoff_s = 5;  // above the server's 1 s, which therefore holds
  LlmClient client(o);
  CompletionResult r = client.complete(chat("rate limited"));
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(r.text, "echo: rate limited");
  auto received = server.received();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].body, received[1].body);
  // Retry-After: 1 was honoured (the backoff alone would be ~10 ms): scheduled, and waited for.
  EXPECT_EQ(r.retry_wait_s, 1.0);
  EXPECT_GE(std::chrono::duration<double>(received[1].at - received[0].at).count(), 0.95);
  EXPECT_TRUE(contains(client.usage_summary(), "2 requests (1 retried), 0 cached;"))
      << client.usage_summary();
}

TEST(LlmClient, CapsRetryAfterAtMaxBackoff) {
  FakeOpenAiServer server;
  server.script({{Fault::k429, 0, "30"}, {Fault::k429, 0, ""}});  // the second has no header
  LlmClient client(fast_options(server));                         // max_backoff_s 0.05
  CompletionResult r = client.complete(chat("patience"));
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.attempts, 3);
  // Retry-After: 30 capped at 0.05 s, then a backoff of at most 0.05 s.
  EXPECT_GT(r.retry_wait_s, 0.05);
  EXPECT_LE(r.retry_wait_s, 0.1);
}

TEST(LlmClient, Retries5xx) {
  FakeOpenAiServer server;
  server.script({{Fault::k500}, {Fault::k503}});
  LlmClient client(fast_options(server));
  CompletionResult r = client.complete(plain("flaky"));
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(server.count_body(request_body(plain("flaky"), "fake-model")), 3u);
  EXPECT_EQ(client.usage().requests_sent, 3);
  EXPECT_EQ(client.usage().failed, 0);
}

TEST(LlmClient, GivesUpAfterMaxAttemptsWithTheLastError) {
  FakeOpenAiServer server;
  server.set_fallback({Fault::k500});
  ClientOptions o = fast_options(server);
  o.max_attempts = 3;
  LlmClient client(o);
  CompletionResult r = client.complete(chat("doomed", "prompts.jsonl line 7"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(server.request_count(), 3u);
  EXPECT_TRUE(contains(r.error, "prompts.jsonl line 7: HTTP 500")) << r.error;
  EXPECT_TRUE(contains(r.error, "The server had an error (fake server)")) << r.error;
  EXPECT_TRUE(contains(r.error, "gave up after 3 attempts")) << r.error;
  EXPECT_EQ(client.usage().failed, 1);
  EXPECT_TRUE(contains(client.usage_summary(), "1 failed")) << client.usage_summary();
}

TEST(LlmClient, RetriesADroppedConnection) {
  FakeOpenAiServer server;
  server.script({{Fault::kDrop}});
  LlmClient client(fast_options(server));
  CompletionResult r = client.complete(chat("dropped"));
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(r.text, "echo: dropped");

  // With no attempts to spare, the item fails naming the transport error.
  server.script({{Fault::kDrop}});
  ClientOptions o = fast_options(server);
  o.max_attempts = 1;
  LlmClient once(o);
  r = once.complete(chat("dropped again", "item 3"));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.error, "item 3: ")) << r.error;
  EXPECT_TRUE(contains(r.error, "gave up after 1 attempts")) << r.error;
}

TEST(LlmClient, RetriesAStallPastTheTimeout) {
  FakeOpenAiServer server;
  server.script({{Fault::kStall, 3.0}});
  ClientOptions o = fast_options(server);
  o.timeout_s = 0.3;
  LlmClient client(o);
  auto start = Clock::now();
  CompletionResult r = client.complete(chat("slow"));
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.attempts, 2);
  // Two attempts: the first was given up at the timeout instead of waiting out the 3 s stall.
  EXPECT_GE(seconds_since(start), 0.29);

  server.script({{Fault::kStall, 3.0}});
  o.max_attempts = 1;
  LlmClient once(o);
  r = once.complete(chat("slow again", "item 9"));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.error, "item 9: ")) << r.error;
  EXPECT_TRUE(contains(r.error, "imed out")) << r.error;
}

TEST(LlmClient, RetriesARefusedConnectionThenFails) {
  std::string dead_url;
  {
    FakeOpenAiServer gone;
    dead_url = gone.base_url();
  }
  ClientOptions o;
  o.api_base = dead_url;
  o.model = "m";
  o.max_attempts = 3;
  o.backoff_s = 0.01;
  o.max_backoff_s = 0.05;
  LlmClient client(o);
  CompletionResult r = client.complete(chat("anyone?", "item 1"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_TRUE(contains(r.error, "item 1: ")) << r.error;
  EXPECT_TRUE(contains(r.error, "gave up after 3 attempts")) << r.error;
  EXPECT_EQ(client.usage().requests_sent, 3);
}

TEST(LlmClient, InvalidResponsesFailAtOnceNamingTheItem) {
  const std::pair<Fault, const char*> cases[] = {
      {Fault::kMalformedJson, "invalid JSON"},
      {Fault::kEmptyChoices, "\"choices\" is empty"},
      {Fault::kMissingContent, "choices[0].message.content is missing"},
  };
  for (auto [fault, expected] : cases) {
    FakeOpenAiServer server;
    server.script({{fault}});
    LlmClient client(fast_options(server));
    CompletionResult r = client.complete(chat("bad answer", "pairs.jsonl line 4"));
    EXPECT_FALSE(r.ok) << expected;
    EXPECT_EQ(r.attempts, 1) << expected;
    EXPECT_EQ(server.request_count(), 1u) << expected;
    EXPECT_TRUE(contains(r.error, "pairs.jsonl line 4: invalid response from ")) << r.error;
    EXPECT_TRUE(contains(r.error, expected)) << r.error;
  }
}

TEST(LlmClient, A400FailsAtOnceWithTheServersMessage) {
  FakeOpenAiServer server;
  server.script_for("too long", {{Fault::k400}});
  LlmClient client(fast_options(server));
  auto results = client.complete_all({chat("too long", "line 2"), chat("fine", "line 3")});
  EXPECT_FALSE(results[0].ok);
  EXPECT_EQ(results[0].attempts, 1);
  EXPECT_TRUE(contains(results[0].error, "line 2: HTTP 400")) << results[0].error;
  EXPECT_TRUE(contains(results[0].error, test::kBadRequestMessage)) << results[0].error;
  // The other item is unaffected.
  EXPECT_TRUE(results[1].ok) << results[1].error;
  EXPECT_EQ(server.request_count(), 2u);
  EXPECT_EQ(client.usage().failed, 1);
}

TEST(LlmClient, KeyGoesOnlyIntoTheAuthorizationHeader) {
  const std::string key = "sk-test-SECRET-4d2c9a";
  test::TempDir dir;
  FakeOpenAiServer server;
  server.script_for("refused", {{Fault::k401EchoingKey}});
  ClientOptions o = fast_options(server);
  o.api_key = key;
  o.cache_path = dir.file("requests.jsonl");
  LlmClient client(o);
  auto results = client.complete_all({chat("accepted"), chat("refused", "item 2")});
  ASSERT_TRUE(results[0].ok) << results[0].error;
  ASSERT_FALSE(results[1].ok);
  for (const auto& r : server.received()) {
    EXPECT_EQ(r.authorization, "Bearer " + key);
    EXPECT_FALSE(contains(r.body, key));
  }
  // The server echoed the key in its message; the client's error does not repeat it.
  EXPECT_TRUE(contains(results[1].error, "HTTP 401")) << results[1].error;
  EXPECT_FALSE(contains(results[1].error, key)) << results[1].error;
  EXPECT_TRUE(contains(results[1].error, "<OPENAI_API_KEY>")) << results[1].error;
  std::string cache = test::read_bytes(o.cache_path);
  EXPECT_TRUE(contains(cache, "echo: accepted"));
  EXPECT_FALSE(contains(cache, key));
  EXPECT_FALSE(contains(client.usage_summary(), key));
}

TEST(LlmClient, ValidatesItsOptions) {
  auto make = [](std::string base, std::string key, auto&& tweak) {
    ClientOptions o;
    o.api_base = std::move(base);
    o.model = "m";
    o.api_key = std::move(key);
    tweak(o);
    LlmClient client(o);
  };
  auto none = [](ClientOptions&) {};
  // A key over plain http leaves the machine only for loopback servers.
  std::string e = test::error_of([&] { make("http://api.example.com/v1", "sk-x", none); });
  EXPECT_TRUE(contains(e, "--api-base http://api.example.com/v1")) << e;
  EXPECT_TRUE(contains(e, "refusing to send OPENAI_API_KEY over plain http")) << e;
  EXPECT_FALSE(contains(e, "sk-x")) << e;
  EXPECT_NO_THROW(make("https://api.example.com/v1", "sk-x", none));
  EXPECT_NO_THROW(make("http://api.example.com/v1", "", none));
  EXPECT_NO_THROW(make("http://127.0.0.1:9/v1", "sk-x", none));
  EXPECT_NO_THROW(make("http://localhost:9/v1", "sk-x", none));

  EXPECT_TRUE(contains(test::error_of([&] { make("", "", none); }), "--api-base is empty"));
  EXPECT_TRUE(contains(test::error_of([&] { make("ftp://host/v1", "", none); }),
                       "not an http:// or https:// URL"));
  EXPECT_TRUE(contains(
      test::error_of([&] { make("https://h/v1", "", [](ClientOptions& o) { o.model = ""; }); }),
      "--api-model is empty"));
  EXPECT_TRUE(contains(test::error_of([&] {
                         make("https://h/v1", "", [](ClientOptions& o) { o.concurrency = 0; });
                       }),
                       "--concurrency must be at least 1"));
  EXPECT_TRUE(contains(
      test::error_of([&] { make("https://h/v1", "", [](ClientOptions& o) { o.max_rpm = -1; }); }),
      "--max-rpm"));
  EXPECT_TRUE(contains(
      test::error_of([&] { make("https://h/v1", "", [](ClientOptions& o) { o.timeout_s = 0; }); }),
      "--timeout"));
  EXPECT_TRUE(contains(test::error_of([&] {
                         make("https://h/v1", "", [](ClientOptions& o) { o.max_attempts = 0; });
                       }),
                       "--max-attempts"));
  EXPECT_TRUE(contains(test::error_of([&] { make("https://h/v1", "sk-a\nb", none); }),
                       "control character"));
}

TEST(LlmClient, RequestsRunConcurrently) {
  FakeOpenAiServer server;
  server.set_fallback({Fault::kNone, 0.2});
  ClientOptions o = fast_options(server);
  o.concurrency = 8;
  LlmClient client(o);
  std::vector<CompletionRequest> requests;
  for (int i = 0; i < 8; ++i) requests.push_back(chat("parallel " + std::to_string(i)));
  auto results = client.complete_all(requests);
  for (const auto& r : results) EXPECT_TRUE(r.ok) << r.error;
  // Each answer takes 0.2 s, so all 8 were in flight at once.
  EXPECT_EQ(server.max_in_flight(), 8);
}

TEST(LlmClient, ConcurrencyBoundsRequestsInFlight) {
  FakeOpenAiServer server;
  server.set_fallback({Fault::kNone, 0.1});
  ClientOptions o = fast_options(server);
  o.concurrency = 2;
  LlmClient client(o);
  std::vector<CompletionRequest> requests;
  for (int i = 0; i < 6; ++i) requests.push_back(chat("pair " + std::to_string(i)));
  auto start = Clock::now();
  for (const auto& r : client.complete_all(requests)) EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(server.max_in_flight(), 2);
  EXPECT_GE(seconds_since(start), 0.29);  // 3 rounds of 0.1 s
}

TEST(LlmClient, MaxRpmSpacesRequestStarts) {
  FakeOpenAiServer server;
  ClientOptions o = fast_options(server);
  o.concurrency = 8;
  o.max_rpm = 600;  // one start every 0.1 s
  LlmClient client(o);
  std::vector<CompletionRequest> requests;
  for (int i = 0; i < 5; ++i) requests.push_back(plain("paced " + std::to_string(i)));
  for (const auto& r : client.complete_all(requests)) EXPECT_TRUE(r.ok) << r.error;
  // The server sees when a request arrives, which is its start plus a latency (more for the
  // first, which also connects). Request k starts at least 0.1·k s after the first, so it arrives
  // at least 0.1·k s minus the first's latency later: 50 ms of slack for that latency, where
  // unpaced requests would all arrive within a few milliseconds.
  auto received = server.received();
  ASSERT_EQ(received.size(), 5u);
  auto since_first = [&](const FakeOpenAiServer::Received& r) {
    return std::chrono::duration<double>(r.at - received[0].at).count();
  };
  for (size_t k = 1; k < received.size(); ++k) {
    EXPECT_GE(since_first(received[k]), 0.1 * static_cast<double>(k) - 0.05) << "request " << k;
  }
  // The spacing holds across calls too.
  EXPECT_TRUE(client.complete(plain("one more")).ok);
  EXPECT_GE(since_first(server.received().back()), 0.5 - 0.05);
}

TEST(LlmClient, IdenticalRequestsInOneCallAreSentOnce) {
  FakeOpenAiServer server;
  LlmClient client(fast_options(server));
  auto results = client.complete_all({chat("same"), chat("other"), chat("same"), chat("same")});
  for (const auto& r : results) EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(server.request_count(), 2u);
  EXPECT_TRUE(server.repeated_bodies().empty());
  EXPECT_EQ(results[2].text, "echo: same");
  EXPECT_EQ(results[0].attempts + results[2].attempts + results[3].attempts, 1);
  EXPECT_EQ(client.usage().cached, 2);
}

TEST(LlmClient, RejectsMalformedRequestsBeforeSendingAny) {
  FakeOpenAiServer server;
  LlmClient client(fast_options(server));
  CompletionRequest bad = chat("x", "line 5");
  bad.max_tokens = 0;
  std::string e = test::error_of([&] { client.complete_all({chat("fine"), bad}); });
  EXPECT_TRUE(contains(e, "line 5: max_tokens must be at least 1")) << e;
  EXPECT_EQ(server.request_count(), 0u);
}

}  // namespace
}  // namespace rlaif
