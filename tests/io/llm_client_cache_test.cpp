// The LLM client's request cache: a run stopped or killed midway and run again answers every item
// exactly once and sends no request twice; a torn last line is tolerated, a malformed one is an
// error naming the file and line.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <sstream>
#include <thread>

#include "io/llm_client.h"
#include "tests/io/fake_openai_server.h"
#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

using test::FakeOpenAiServer;
using test::Fault;
using Clock = std::chrono::steady_clock;

ClientOptions cache_options(const std::string& base_url, const std::string& cache_path) {
  ClientOptions o;
  o.api_base = base_url;
  o.model = "fake-model";
  o.concurrency = 3;
  o.timeout_s = 5;
  o.max_attempts = 3;
  o.backoff_s = 0.01;
  o.max_backoff_s = 0.05;
  o.cache_path = cache_path;
  return o;
}

std::vector<CompletionRequest> numbered_requests(int n) {
  std::vector<CompletionRequest> requests;
  for (int i = 0; i < n; ++i) {
    CompletionRequest r;
    r.messages = {{"user", "question " + std::to_string(i)}};
    r.max_tokens = 8;
    r.item = "prompts.jsonl line " + std::to_string(i + 1);
    requests.push_back(r);
  }
  return requests;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

int count_cached(const std::vector<CompletionResult>& results) {
  int n = 0;
  for (const auto& r : results) n += r.from_cache;
  return n;
}

TEST(LlmClientCache, AnsweredRequestsAreNeverSentAgain) {
  test::TempDir dir;
  std::string cache = dir.file("requests.jsonl");
  FakeOpenAiServer server;
  auto requests = numbered_requests(3);
  {
    LlmClient client(cache_options(server.base_url(), cache));
    for (const auto& r : client.complete_all(requests)) EXPECT_TRUE(r.ok) << r.error;
  }
  // One line per response: the key is the body's hash; the response keeps the parsed fields.
  auto lines = lines_of(test::read_bytes(cache));
  ASSERT_EQ(lines.size(), 3u);
  std::set<std::string> keys;
  for (const std::string& line : lines) {
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    ASSERT_FALSE(doc.HasParseError()) << line;
    keys.insert(doc["key"].GetString());
    const auto& response = doc["response"];
    EXPECT_TRUE(std::string(response["text"].GetString()).rfind("echo: question ", 0) == 0);
    EXPECT_STREQ(response["finish_reason"].GetString(), "stop");
    EXPECT_EQ(response["prompt_tokens"].GetInt64(), 10);  // "question N"
    EXPECT_GT(response["completion_tokens"].GetInt64(), 0);
  }
  for (const auto& r : requests) {
    EXPECT_EQ(keys.count(request_key(request_body(r, "fake-model"))), 1u);
  }

  requests.push_back(numbered_requests(4).back());
  LlmClient again(cache_options(server.base_url(), cache));
  auto results = again.complete_all(requests);
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_TRUE(results[i].ok) << results[i].error;
    EXPECT_EQ(results[i].text, "echo: question " + std::to_string(i));
    EXPECT_EQ(results[i].from_cache, i < 3);
    EXPECT_EQ(results[i].attempts, i < 3 ? 0 : 1);
  }
  EXPECT_EQ(server.request_count(), 4u);
  EXPECT_TRUE(server.repeated_bodies().empty());
  EXPECT_EQ(again.usage().cached, 3);
  EXPECT_EQ(again.usage().requests_sent, 1);
  EXPECT_EQ(again.usage().prompt_tokens, 4 * 10);  // cached responses count too
}

TEST(LlmClientCache, AStoppedRunResumesWithoutSendingAnythingTwice) {
  test::TempDir dir;
  std::string cache = dir.file("requests.jsonl");
  FakeOpenAiServer server;
  server.set_fallback({Fault::kNone, 0.05});
  auto requests = numbered_requests(12);

  size_t delivered = 0;
  {
    LlmClient client(cache_options(server.base_url(), cache));
    client.set_stop_check([&] { return delivered >= 4; });
    auto results = client.complete_all(requests, [&](size_t, const CompletionResult& r) {
      EXPECT_TRUE(r.ok) << r.error;
      ++delivered;
    });
    size_t ok = 0;
    for (const auto& r : results) {
      if (r.ok) {
        ++ok;
      } else {
        EXPECT_EQ(r.error, "interrupted");
      }
    }
    EXPECT_EQ(ok, delivered);
    EXPECT_GE(delivered, 4u);
    EXPECT_LT(delivered, 12u);
    // The requests in flight at the stop finished (and were cached); nothing more was sent.
    EXPECT_EQ(server.request_count(), delivered);
    EXPECT_EQ(client.usage().failed, 0);
  }
  EXPECT_EQ(lines_of(test::read_bytes(cache)).size(), delivered);

  LlmClient again(cache_options(server.base_url(), cache));
  auto results = again.complete_all(requests);
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_TRUE(results[i].ok) << results[i].error;
    EXPECT_EQ(results[i].text, "echo: question " + std::to_string(i));
  }
  EXPECT_EQ(static_cast<size_t>(count_cached(results)), delivered);
  EXPECT_EQ(server.request_count(), requests.size());
  EXPECT_TRUE(server.repeated_bodies().empty());
  EXPECT_EQ(lines_of(test::read_bytes(cache)).size(), requests.size());
}

TEST(LlmClientCache, AStopInterruptsItemsWaitingToRetry) {
  test::TempDir dir;
  FakeOpenAiServer server;
  server.set_fallback({Fault::k500});
  ClientOptions o = cache_options(server.base_url(), dir.file("requests.jsonl"));
  o.backoff_s = o.max_backoff_s = 10;  // the retry would come long after the stop
  LlmClient client(o);
  auto start = Clock::now();
  client.set_stop_check([&] { return Clock::now() - start > std::chrono::milliseconds(200); });
  CompletionResult r = client.complete(numbered_requests(1)[0]);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "interrupted");
  EXPECT_EQ(r.attempts, 1);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 2.0);
  EXPECT_EQ(client.usage().failed, 0);
}

// The child process runs the client and is killed with SIGKILL while requests are in flight: no
// clean-up runs, only what reached the file survives. The re-run may resend at most the requests
// that were in flight (their answers never arrived); everything answered before is kept.
TEST(LlmClientCache, ARunKilledMidwayResumesLosingAtMostWhatWasInFlight) {
  test::TempDir dir;
  std::string cache = dir.file("requests.jsonl");
  auto requests = numbered_requests(20);
  const int concurrency = 2;

  int port_pipe[2];
  ASSERT_EQ(pipe(port_pipe), 0);
  // Fork before the server starts any thread: the child is then a plain single-threaded copy.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(port_pipe[1]);
    int port = 0;
    if (read(port_pipe[0], &port, sizeof port) != sizeof port) _exit(3);
    try {
      ClientOptions o = cache_options("http://127.0.0.1:" + std::to_string(port) + "/v1", cache);
      o.concurrency = concurrency;
      LlmClient client(o);
      client.complete_all(requests);
    } catch (...) {
      _exit(4);
    }
    _exit(0);
  }
  close(port_pipe[0]);
  FakeOpenAiServer server;
  server.set_fallback({Fault::kNone, 0.1});  // 20 requests, 2 at a time: 1 s to kill it in
  int port = server.port();
  ASSERT_EQ(write(port_pipe[1], &port, sizeof port), static_cast<ssize_t>(sizeof port));
  close(port_pipe[1]);

  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (server.request_count() < 8 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child ended on its own, status " << status;
  size_t sent_before = server.request_count();
  ASSERT_GE(sent_before, 8u);
  ASSERT_LT(sent_before, requests.size());

  LlmClient again(cache_options(server.base_url(), cache));
  auto results = again.complete_all(requests);
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_TRUE(results[i].ok) << results[i].error;
    EXPECT_EQ(results[i].text, "echo: question " + std::to_string(i));
  }
  // The child cached each answer before starting another request, so all but the last
  // `concurrency` requests it sent were answered from the cache.
  size_t cached = static_cast<size_t>(count_cached(results));
  EXPECT_GE(cached + concurrency, sent_before);
  EXPECT_EQ(server.request_count(), sent_before + (requests.size() - cached));
  EXPECT_LE(server.repeated_bodies().size(), static_cast<size_t>(concurrency));
}

TEST(LlmClientCache, ATornLastLineIsDroppedAndItsRequestSentAgain) {
  test::TempDir dir;
  std::string cache = dir.file("requests.jsonl");
  FakeOpenAiServer server;
  auto requests = numbered_requests(3);
  {
    LlmClient client(cache_options(server.base_url(), cache));
    client.complete_all(requests);
  }
  std::string complete = test::read_bytes(cache);
  // A crash in the middle of writing a fourth line.
  test::write_bytes(cache, complete + R"({"key":"3f2a","response":{"text":"half wri)");

  LlmClient client(cache_options(server.base_url(), cache));
  EXPECT_EQ(test::read_bytes(cache), complete);  // the torn tail is gone
  requests.push_back(numbered_requests(4).back());
  auto results = client.complete_all(requests);
  for (const auto& r : results) EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(count_cached(results), 3);
  EXPECT_EQ(server.request_count(), 4u);
  // The new line starts on a line of its own: the file reads back whole.
  auto lines = lines_of(test::read_bytes(cache));
  ASSERT_EQ(lines.size(), 4u);
  for (const auto& line : lines) {
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    EXPECT_FALSE(doc.HasParseError()) << line;
  }
  LlmClient reloaded(cache_options(server.base_url(), cache));
  EXPECT_EQ(count_cached(reloaded.complete_all(requests)), 4);
}

TEST(LlmClientCache, AMalformedLineIsAnErrorNamingFileAndLine) {
  test::TempDir dir;
  std::string cache = dir.file("requests.jsonl");
  const std::string good =
      R"({"key":"k1","response":{"text":"t","finish_reason":"stop","prompt_tokens":1,)"
      R"("completion_tokens":1}})";
  auto error_for = [&](const std::string& contents) {
    test::write_bytes(cache, contents);
    return test::error_of([&] { LlmClient client(cache_options("http://127.0.0.1:9/v1", cache)); });
  };
  std::string e = error_for(good + "\n{not json\n" + good + "\n");
  EXPECT_TRUE(e.find(cache + ":2: invalid JSON") != std::string::npos) << e;
  e = error_for(good + "\n\n" + R"({"key":"k2","response":{"text":"t"}})" + "\n");
  EXPECT_TRUE(e.find(cache + ":3: missing string field \"response.finish_reason\"") !=
              std::string::npos)
      << e;
  e = error_for(R"({"key":5,"response":{}})"
                "\n");
  EXPECT_TRUE(e.find(cache + ":1: missing string field \"key\"") != std::string::npos) << e;
  // The same bytes as a last line without its newline are a torn write, not an error.
  test::write_bytes(cache, good + "\n{not json");
  EXPECT_NO_THROW(LlmClient(cache_options("http://127.0.0.1:9/v1", cache)));
  EXPECT_EQ(test::read_bytes(cache), good + "\n");
}

}  // namespace
}  // namespace rlaif
