// `rlaif serve`'s server (io/openai_server.h) under the conditions of a long-running service:
// requests that time out while queued or generating, clients that disconnect mid-generation
// (raw sockets, closed by the test), a graceful drain, and API-key authentication. The server
// runs in-process on an ephemeral loopback port with the shipped stories260K model.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "io/chat_template.h"
#include "io/llm_client.h"
#include "io/model_dir.h"
#include "io/openai_server.h"
#include "io/tokenizer.h"
#include "model/generate.h"
#include "tests/io/io_test_util.h"
#include "tests/io/server_test_fixture.h"
#include "tests/io/sse_events.h"

namespace rlaif {
namespace {

const std::string kModelDir = test::ServerFixture::model_dir();
using Clock = std::chrono::steady_clock;

// Holds the generation thread at one decoding step until released: the state "this request is
// generating" made to last as long as a test needs.
class StepGate {
 public:
  explicit StepGate(int64_t hold_at) : hold_at_(hold_at) {}
  void on_step(int64_t step) {
    if (step != hold_at_) return;
    std::unique_lock<std::mutex> lock(mutex_);
    reached_ = true;
    changed_.notify_all();
    changed_.wait_for(lock, std::chrono::seconds(20), [this] { return released_; });
  }
  bool wait_reached() {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [this] { return reached_; });
  }
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  const int64_t hold_at_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool reached_ = false, released_ = false;
};

// A client on a plain socket, so that a test can close the connection while its request waits.
class RawClient {
 public:
  explicit RawClient(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawClient() { close(); }
  bool connected() const { return connected_; }
  bool post(const std::string& path, const std::string& body) {
    const std::string text = "POST " + path +
                             " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                             "Content-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n" + body;
    return ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
  bool connected_ = false;
};

class OpenAiServerLifecycle : public test::ServerFixture {
 protected:
  // A server whose generation thread holds at decoding step `step` until gate_->release().
  void serve_gated(int64_t step, ServerOptions options = {}) {
    gate_ = std::make_shared<StepGate>(step);
    options.on_step = [gate = gate_](int64_t s) { gate->on_step(s); };
    serve(options);
  }
  void TearDown() override {
    if (gate_) gate_->release();
    server_.reset();
  }

  // Waits up to 10 s for `done`; false if it never held.
  template <typename F>
  static bool eventually(F done) {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!done() && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return done();
  }

  std::shared_ptr<StepGate> gate_;
};

// What a request made on another thread got (status 0: no answer).
struct Answer {
  int status = 0;
  std::string body;
};
Answer answer_of(const httplib::Result& res) {
  return res ? Answer{res->status, res->body} : Answer{};
}

rapidjson::Document parse(const std::string& body) {
  return test::parse_body(body);
}

// 200 greedy tokens from BOS: stories260K writes no EOS in them (llama2.c's golden text).
const std::string kLongCompletion = R"({"prompt":"","temperature":0,"max_tokens":200})";
const std::string kShortChat =
    R"({"messages":[{"role":"user","content":"Hi."}],"temperature":0,"max_tokens":4})";

// A streamed /v1/completions request's events as a client reads them, on its own thread: the
// body so far is in received() at any moment.
class StreamReader {
 public:
  StreamReader(int port, const std::string& body)
      : thread_([this, port, body] {
          httplib::Client c("127.0.0.1", port);
          c.set_read_timeout(30);
          httplib::Request req;
          req.method = "POST";
          req.path = "/v1/completions";
          req.headers = {{"Content-Type", "application/json"}};
          req.body = body;
          req.content_receiver = [this](const char* data, size_t n, uint64_t, uint64_t) {
            std::lock_guard<std::mutex> lock(mutex_);
            received_.append(data, n);
            return true;
          };
          httplib::Response res;
          httplib::Error error = httplib::Error::Success;
          c.send(req, res, error);
        }) {}
  ~StreamReader() { join(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  std::string received() {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }

 private:
  std::mutex mutex_;
  std::string received_;
  std::thread thread_;
};

// The text and the last finish_reason of a completion stream's events.
std::pair<std::string, std::string> stream_text(const std::string& body, bool& done) {
  std::string text, finish;
  for (const std::string& event : test::sse_data(body, done)) {
    rapidjson::Document e;
    e.Parse(event.c_str(), event.size());
    if (e.HasParseError() || !e.HasMember("choices") || e["choices"].Empty()) continue;
    const auto& choice = e["choices"][0];
    text += choice["text"].GetString();
    if (!choice["finish_reason"].IsNull()) finish = choice["finish_reason"].GetString();
  }
  return {text, finish};
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

const std::string kForty = R"({"prompt":"","temperature":0,"max_tokens":40)";

// A stream sends its text as it is generated: with generation held at step 20 of 40, the client
// already holds the text of the first steps; released, the rest follows, and the pieces add up
// to the answer the same request gets unstreamed.
TEST_F(OpenAiServerLifecycle, AStreamSendsItsTextWhileItIsGenerated) {
  serve();
  auto plain = post("/v1/completions", kForty + "}");
  ASSERT_TRUE(plain);
  ASSERT_EQ(plain->status, 200) << plain->body;
  const std::string want = parse(plain->body)["choices"][0]["text"].GetString();

  serve_gated(20);
  StreamReader reader(port_, kForty + R"(,"stream":true})");
  ASSERT_TRUE(gate_->wait_reached());
  // The text of the first steps, however the server grouped it into events: ten words of it.
  std::string held_text;
  EXPECT_TRUE(eventually([&] {
    bool held_done = false;
    held_text = stream_text(reader.received(), held_done).first;
    return occurrences(held_text, " ") >= 10;
  })) << reader.received();
  EXPECT_EQ(want.rfind(held_text, 0), 0u) << held_text;
  EXPECT_EQ(reader.received().find("[DONE]"), std::string::npos);  // while it is held
  gate_->release();
  reader.join();
  bool done = false;
  const auto [text, finish] = stream_text(reader.received(), done);
  EXPECT_TRUE(done);
  EXPECT_EQ(text, want);
  EXPECT_EQ(finish, "length");
  // Counted once the server's thread is past the last event (the client may read it first).
  EXPECT_TRUE(eventually(
      [&] { return server_->stats().requests == 1 && server_->stats().in_flight == 0; }));
}

// A stop string ends a stream where it appears, and the request's row stops generating there,
// long before its max_tokens.
TEST_F(OpenAiServerLifecycle, AStopStringEndsAStreamAndItsRow) {
  serve();
  auto plain = post("/v1/completions", kForty + "}");
  ASSERT_TRUE(plain);
  const std::string text = parse(plain->body)["choices"][0]["text"].GetString();
  // The stop string: the fifth word of the answer, with the space before it.
  size_t at = 0;
  for (int word = 0; word < 4; ++word) at = text.find(' ', at + 1);
  ASSERT_NE(at, std::string::npos) << text;
  const std::string stop = text.substr(at, text.find(' ', at + 1) - at);
  serve();
  StreamReader reader(port_, R"({"prompt":"","temperature":0,"max_tokens":200,"stream":true,)"
                             R"("stop":[")" +
                                 stop + R"("]})");
  reader.join();
  bool done = false;
  const auto [streamed, finish] = stream_text(reader.received(), done);
  EXPECT_TRUE(done);
  EXPECT_EQ(streamed, text.substr(0, text.find(stop)));
  EXPECT_EQ(finish, "stop");
  EXPECT_TRUE(eventually([&] { return server_->stats().in_flight == 0; }));
  EXPECT_LT(server_->stats().steps, 40);  // not 200
}

TEST_F(OpenAiServerLifecycle, AQueuedRequestTimesOutWith504AndLeavesTheQueue) {
  ServerOptions o;
  o.request_timeout_s = 0.3;
  serve(o);
  server_->pause_generation(true);
  const auto t0 = Clock::now();
  auto res = post("/v1/completions", kLongCompletion);
  const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 504) << res->body;
  EXPECT_GE(waited, 0.3);
  EXPECT_LT(waited, 5.0);
  auto d = parse(res->body);
  EXPECT_STREQ(d["error"]["code"].GetString(), "timeout");
  EXPECT_STREQ(d["error"]["type"].GetString(), "server_error");
  EXPECT_NE(std::string(d["error"]["message"].GetString()).find("--request-timeout"),
            std::string::npos);
  EXPECT_EQ(server_->stats().timed_out, 1);
  EXPECT_EQ(server_->stats().in_flight, 0);
  server_->pause_generation(false);
  // The timed-out request was never generated: the next one runs alone, for its own 4 steps.
  res = post("/v1/chat/completions", kShortChat);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(server_->stats().batches, 1);
  EXPECT_LE(server_->stats().steps, 4);
}

TEST_F(OpenAiServerLifecycle, AGeneratingRequestTimesOutAndItsBatchStops) {
  ServerOptions o;
  o.request_timeout_s = 0.5;
  serve_gated(1, o);
  auto res = post("/v1/completions", kLongCompletion);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 504) << res->body;
  ASSERT_TRUE(gate_->wait_reached());
  gate_->release();
  res = post("/v1/chat/completions", kShortChat);  // answered after the abandoned batch ended
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  // The 200-token batch ended one step after its only request went: 2 steps, not 200.
  EXPECT_LE(server_->stats().steps, 3 + 4);
  EXPECT_EQ(server_->stats().timed_out, 1);
}

TEST_F(OpenAiServerLifecycle, AClientThatDisconnectsCancelsItsGeneration) {
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "streamed" : "not streamed");
    serve_gated(3);
    RawClient raw(port_);
    ASSERT_TRUE(raw.connected());
    ASSERT_TRUE(raw.post("/v1/completions", R"({"prompt":"","temperature":0,"max_tokens":200,)"
                                            R"("stream":)" +
                                                std::string(stream ? "true}" : "false}")));
    ASSERT_TRUE(gate_->wait_reached());  // generating, held at step 3
    raw.close();
    EXPECT_TRUE(eventually([&] { return server_->stats().abandoned == 1; }));
    gate_->release();
    EXPECT_TRUE(eventually([&] { return server_->stats().in_flight == 0; }));
    auto res = post("/v1/chat/completions", kShortChat);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << res->body;
    EXPECT_LE(server_->stats().steps, 5 + 4);  // not 200 + 4
    EXPECT_EQ(server_->stats().requests, 1);
  }
}

TEST_F(OpenAiServerLifecycle, ARowWhoseClientLeftNoLongerHoldsTheBatch) {
  serve_gated(2);
  server_->pause_generation(true);  // both requests queue, then run as one batch
  RawClient raw(port_);
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(raw.post("/v1/completions", kLongCompletion));
  EXPECT_TRUE(eventually([&] { return server_->stats().in_flight == 1; }));
  const std::string body = R"({"prompt":"Once upon","temperature":0,"max_tokens":8})";
  Answer kept;
  std::thread waiting([&] { kept = answer_of(post("/v1/completions", body)); });
  EXPECT_TRUE(eventually([&] { return server_->stats().queued == 2; }));
  server_->pause_generation(false);
  ASSERT_TRUE(gate_->wait_reached());
  raw.close();
  EXPECT_TRUE(eventually([&] { return server_->stats().abandoned == 1; }));
  gate_->release();
  waiting.join();
  ASSERT_EQ(kept.status, 200) << kept.body;
  EXPECT_EQ(server_->stats().largest_batch, 2);
  // The kept request's 8 tokens, not the other's 200 (counted once the step is over: the answer
  // can come first).
  EXPECT_TRUE(eventually([&] { return server_->stats().steps == 8; })) << server_->stats().steps;
  // The kept request's answer is what it gets alone.
  auto alone = post("/v1/completions", body);
  ASSERT_TRUE(alone);
  EXPECT_EQ(parse(kept.body)["choices"][0]["text"], parse(alone->body)["choices"][0]["text"]);
}

// Continuous batching: with --max-batch 2, a request queued behind a running batch takes the row
// that its short neighbour leaves, and is answered while the batch's long request goes on
// (held at step 150 until that answer is in); both answers are what each request gets alone.
TEST_F(OpenAiServerLifecycle, AQueuedRequestTakesAnEndedRowOfTheRunningBatch) {
  const std::string short_body = R"({"prompt":"Once upon","temperature":0,"max_tokens":4})";
  serve();
  auto short_alone = post("/v1/completions", short_body);
  auto long_alone = post("/v1/completions", kLongCompletion);
  ASSERT_TRUE(short_alone && long_alone);

  auto joined_answer = std::make_shared<std::promise<void>>();
  auto answered = std::make_shared<std::shared_future<void>>(joined_answer->get_future().share());
  auto answered_while_running = std::make_shared<std::atomic<bool>>(false);
  ServerOptions o;
  o.max_batch = 2;
  o.on_step = [answered, answered_while_running](int64_t step) {
    if (step == 150)
      *answered_while_running =
          answered->wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  };
  serve(o);
  server_->pause_generation(true);  // queued in this order: long, short, short (the joiner)
  Answer long_answer, first_short, joiner;
  std::thread long_thread(
      [&] { long_answer = answer_of(post("/v1/completions", kLongCompletion)); });
  EXPECT_TRUE(eventually([&] { return server_->stats().queued == 1; }));
  std::thread first_thread([&] { first_short = answer_of(post("/v1/completions", short_body)); });
  EXPECT_TRUE(eventually([&] { return server_->stats().queued == 2; }));
  std::thread joiner_thread([&] {
    joiner = answer_of(post("/v1/completions", short_body));
    joined_answer->set_value();
  });
  EXPECT_TRUE(eventually([&] { return server_->stats().queued == 3; }));
  server_->pause_generation(false);
  joiner_thread.join();
  first_thread.join();
  long_thread.join();
  EXPECT_TRUE(*answered_while_running);
  for (const Answer* a : {&long_answer, &first_short, &joiner})
    ASSERT_EQ(a->status, 200) << a->body;
  const ServerStats st = server_->stats();
  EXPECT_EQ(st.batches, 1);
  EXPECT_EQ(st.joined, 1);
  // The long request's steps (the others rode along), counted once the step is over.
  EXPECT_TRUE(eventually([&] { return server_->stats().steps == 200; })) << server_->stats().steps;
  const auto text = [](const std::string& body) {
    return std::string(parse(body)["choices"][0]["text"].GetString());
  };
  EXPECT_EQ(text(joiner.body), text(short_alone->body));
  EXPECT_EQ(text(first_short.body), text(short_alone->body));
  EXPECT_EQ(text(long_answer.body), text(long_alone->body));
}

// A batch that started with one request grows when more arrive: held at step 5 of a long
// request, two short ones queue; released, they take two new rows of the same batch (--max-batch
// 4) and get what they get alone.
TEST_F(OpenAiServerLifecycle, ARunningBatchGrowsForQueuedRequests) {
  const std::string short_body = R"({"prompt":"Once upon","temperature":0,"max_tokens":6})";
  serve();
  auto short_alone = post("/v1/completions", short_body);
  ASSERT_TRUE(short_alone);
  ServerOptions o;
  o.max_batch = 4;
  serve_gated(5, o);
  Answer long_answer, a, b;
  std::thread long_thread(
      [&] { long_answer = answer_of(post("/v1/completions", kLongCompletion)); });
  ASSERT_TRUE(gate_->wait_reached());
  std::thread a_thread([&] { a = answer_of(post("/v1/completions", short_body)); });
  std::thread b_thread([&] { b = answer_of(post("/v1/completions", short_body)); });
  EXPECT_TRUE(eventually([&] { return server_->stats().queued == 2; }));
  gate_->release();
  a_thread.join();
  b_thread.join();
  long_thread.join();
  for (const Answer* x : {&long_answer, &a, &b}) ASSERT_EQ(x->status, 200) << x->body;
  const ServerStats st = server_->stats();
  EXPECT_EQ(st.batches, 1);
  EXPECT_EQ(st.joined, 2);
  EXPECT_EQ(st.largest_batch, 3);
  const std::string want = parse(short_alone->body)["choices"][0]["text"].GetString();
  EXPECT_EQ(parse(a.body)["choices"][0]["text"].GetString(), want);
  EXPECT_EQ(parse(b.body)["choices"][0]["text"].GetString(), want);
}

TEST_F(OpenAiServerLifecycle, DrainingRefusesNewConnectionsAndFinishesRequestsInFlight) {
  serve();
  server_->pause_generation(true);
  Answer in_flight;
  std::thread waiting([&] { in_flight = answer_of(post("/v1/chat/completions", kShortChat)); });
  EXPECT_TRUE(eventually([&] { return server_->stats().in_flight == 1; }));
  server_->stop_accepting();
  EXPECT_FALSE(client().Get("/v1/models"));  // connection refused
  server_->pause_generation(false);
  EXPECT_TRUE(server_->drain_and_stop(10));
  waiting.join();
  EXPECT_EQ(in_flight.status, 200) << in_flight.body;
  EXPECT_EQ(server_->stats().requests, 1);

  // A drain that runs out of time answers what is left 503.
  serve();
  server_->pause_generation(true);
  std::thread stuck([&] { in_flight = answer_of(post("/v1/chat/completions", kShortChat)); });
  EXPECT_TRUE(eventually([&] { return server_->stats().in_flight == 1; }));
  const auto t0 = Clock::now();
  EXPECT_FALSE(server_->drain_and_stop(0.2));
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 5.0);
  stuck.join();
  EXPECT_EQ(in_flight.status, 503) << in_flight.body;
}

TEST_F(OpenAiServerLifecycle, AnApiKeyIsRequiredOnEveryEndpoint) {
  ServerOptions o;
  o.api_key = "sk-rlaif-test-4f2a";
  serve(o);
  const httplib::Headers good = {{"Authorization", "Bearer sk-rlaif-test-4f2a"}};
  for (const httplib::Headers& bad :
       {httplib::Headers{}, httplib::Headers{{"Authorization", "Bearer sk-rlaif-test"}},
        httplib::Headers{{"Authorization", "sk-rlaif-test-4f2a"}}}) {
    auto res = client().Get("/v1/models", bad);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401);
    EXPECT_EQ(res->get_header_value("WWW-Authenticate"), "Bearer");
    auto d = parse(res->body);
    EXPECT_STREQ(d["error"]["code"].GetString(), "invalid_api_key");
    EXPECT_EQ(std::string(d["error"]["message"].GetString()).find("sk-rlaif"), std::string::npos);
    EXPECT_EQ(post("/v1/chat/completions", kShortChat, bad)->status, 401);
    EXPECT_EQ(client().Get("/v1/nothing", bad)->status, 401);
  }
  EXPECT_EQ(client().Get("/v1/models", good)->status, 200);
  EXPECT_EQ(post("/v1/chat/completions", kShortChat, good)->status, 200);
  EXPECT_EQ(client().Get("/v1/nothing", good)->status, 404);
  EXPECT_EQ(server_->stats().unauthorized, 9);
  EXPECT_EQ(server_->stats().requests, 1);

  // The project's own client (a teacher or critic) sends the key it is given.
  ClientOptions co;
  co.api_base = "http://127.0.0.1:" + std::to_string(port_) + "/v1";
  co.model = "stories260K";
  co.timeout_s = 30;
  co.max_attempts = 1;
  CompletionRequest r;
  r.messages = {{"user", "Tell me a story."}};
  r.temperature = 0;
  r.max_tokens = 6;
  co.api_key = "sk-rlaif-test-4f2a";
  CompletionResult ok = LlmClient(co).complete_all({r})[0];
  EXPECT_TRUE(ok.ok) << ok.error;
  EXPECT_GT(ok.completion_tokens, 0);
  co.api_key = "";
  CompletionResult refused = LlmClient(co).complete_all({r})[0];
  EXPECT_FALSE(refused.ok);
  EXPECT_NE(refused.error.find("401"), std::string::npos) << refused.error;
}

TEST(OpenAiServerHosts, AnythingButLoopbackNeedsAnApiKey) {
  Transformer model = load_model(kModelDir);
  Tokenizer tok = Tokenizer::load_dir(kModelDir);
  for (const char* host : {"0.0.0.0", "192.168.1.7", "::", "example.com"}) {
    ServerOptions o;
    o.host = host;
    const std::string error = test::error_of([&] { OpenAiServer s(model, tok, o); });
    EXPECT_NE(error.find("--host"), std::string::npos) << host << ": " << error;
    EXPECT_NE(error.find("--api-key"), std::string::npos) << host << ": " << error;
    o.api_key = "k";
    EXPECT_NO_THROW({ OpenAiServer s(model, tok, o); }) << host;
  }
  for (const char* host : {"127.0.0.1", "127.8.0.2", "::1", "localhost"}) {
    ServerOptions o;
    o.host = host;
    EXPECT_NO_THROW({ OpenAiServer s(model, tok, o); }) << host;
  }
}

}  // namespace
}  // namespace rlaif
