// A fault-injecting OpenAI-compatible server for tests: real HTTP on 127.0.0.1 (an ephemeral
// port), served by cpp-httplib from a thread of the test process. Each request gets the next
// scripted reply: a normal completion, or one of the faults an API client must survive (429 with
// Retry-After, 5xx, a dropped connection, a stall past the client's timeout, malformed JSON,
// empty choices, an OpenAI-shaped 400). Every request is recorded, so tests can count attempts
// and check that no body was ever sent twice.
//
//   FakeOpenAiServer server;
//   server.script({{Fault::k429}, {Fault::k500}});  // the next two requests; then normal replies
//   ClientOptions o;  o.api_base = server.base_url();  ...
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
struct Response;
}  // namespace httplib

namespace rlaif::test {

enum class Fault {
  kNone,            // 200 with a completion
  k429,             // 429 Too Many Requests, with Retry-After: Reply::retry_after
  k500,             // 500 with an OpenAI-shaped error
  k503,             // 503 with a plain-text body
  kDrop,            // 200 headers promising a body, half of it, then the connection closes
  kStall,           // answers normally, but only after Reply::delay_s (set it past the timeout)
  kMalformedJson,   // 200 with a body that is not JSON
  kEmptyChoices,    // 200 with "choices": []
  kMissingContent,  // 200 whose choices[0] lacks its text
  k400,             // 400 with {"error": {"message": kBadRequestMessage, ...}}
  k401EchoingKey,   // 401 whose message quotes the Authorization header it received
};

inline constexpr const char* kBadRequestMessage =
    "This model's maximum context length is 4097 tokens (fake server)";

struct Reply {
  Fault fault = Fault::kNone;
  double delay_s = 0;             // before answering (any reply; kStall's stall)
  std::string retry_after = "1";  // k429's header; "" sends none
  std::string finish_reason = "stop";
  bool usage = true;  // a normal reply's "usage" (false: none, as some servers send)
};

class FakeOpenAiServer {
 public:
  using Clock = std::chrono::steady_clock;

  struct Received {
    std::string path;  // "/v1/chat/completions" or "/v1/completions"
    std::string body;
    std::string authorization;  // the Authorization header ("" when absent)
    Clock::time_point at;       // when the request arrived
  };

  // Listens on 127.0.0.1 at a free port; ready when the constructor returns.
  FakeOpenAiServer();
  ~FakeOpenAiServer();
  FakeOpenAiServer(const FakeOpenAiServer&) = delete;
  FakeOpenAiServer& operator=(const FakeOpenAiServer&) = delete;

  int port() const { return port_; }
  std::string base_url() const;  // "http://127.0.0.1:PORT/v1"

  // Replies for the next requests in arrival order, after those already scripted; once they run
  // out, the fallback (a normal reply unless set_fallback says otherwise).
  void script(const std::vector<Reply>& replies);
  void set_fallback(const Reply& reply);
  // Replies for requests whose body contains `needle` (checked before the general script).
  void script_for(const std::string& needle, const std::vector<Reply>& replies);
  // The text of a normal reply from the request's prompt (the last message's content, or the
  // prompt); by default "echo: " + prompt. Called from server threads.
  void set_answer(std::function<std::string(const std::string& prompt)> answer);

  // Appends every request body to `path` as it arrives, one line each (for scripts that run the
  // server as a process: tests/fixtures/fake_openai_server_main.cpp).
  void set_request_log(const std::string& path);

  std::vector<Received> received() const;
  // Requests received so far, and how many of them carried exactly this body.
  size_t request_count() const;
  size_t count_body(const std::string& body) const;
  // Bodies that arrived more than once.
  std::vector<std::string> repeated_bodies() const;
  // The most requests the server was handling at one time.
  int max_in_flight() const;
  // The usage a normal reply reports: prompt_tokens = bytes of the prompt, completion_tokens =
  // bytes of the answer (so tests can check the client's sums exactly).

 private:
  void handle(const std::string& path, const std::string& body, const std::string& authorization,
              httplib::Response& response);
  Reply next_reply(const std::string& body);
  // Sleeps `seconds`, or less when the server shuts down.
  void sleep_for(double seconds);

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;

  mutable std::mutex mutex_;
  std::condition_variable stopping_cv_;
  bool stopping_ = false;
  std::deque<Reply> script_;
  std::map<std::string, std::deque<Reply>> scripts_for_;
  Reply fallback_;
  std::function<std::string(const std::string&)> answer_;
  std::vector<Received> received_;
  std::FILE* request_log_ = nullptr;
  int in_flight_ = 0;
  int max_in_flight_ = 0;
};

}  // namespace rlaif::test
