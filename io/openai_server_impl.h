// The internals of `rlaif serve`'s server (io/openai_server.h), shared by its two files:
// openai_server.cpp (routes, request handling, lifecycle) and openai_server_queue.cpp (the queue,
// batching, generation, streamed answers). Included by nothing else.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "io/openai_protocol.h"
#include "io/openai_server.h"
#include "io/openai_stream.h"
#include "model/decoding_batch.h"
#include "model/generate.h"

namespace rlaif {
namespace server_internal {

// Thrown into requests that the server will not answer because it is stopping.
class ShuttingDown : public std::runtime_error {
 public:
  ShuttingDown() : std::runtime_error("the server is shutting down") {}
};

// Thrown in a request whose client closed the connection: nobody will read its answer.
class ClientGone : public std::runtime_error {
 public:
  ClientGone() : std::runtime_error("the client closed the connection") {}
};

using Clock = std::chrono::steady_clock;

// How often a request waiting for its generation looks at its connection and its deadline.
inline constexpr auto kWatchInterval = std::chrono::milliseconds(20);

struct Job {
  std::vector<int32_t> prompt;
  int64_t max_new_tokens = 0;
  SamplingOptions sampling;
  uint64_t stream = 0;
  std::promise<Generation> result;
  // A streamed request's: the row's tokens after every step (null for the others).
  std::shared_ptr<TokenFeed> feed;
  // Cleared when the request is answered without its generation (timeout, client gone): its
  // row of a running batch ends at the next step.
  std::atomic<bool> wanted{true};
};

// Whether two requests can share a batch: the sampling kernel takes one temperature, top-p and
// top-k for every row; seeds are per row.
inline bool same_sampling(const SamplingOptions& a, const SamplingOptions& b) {
  return a.temperature == b.temperature && a.top_p == b.top_p && a.top_k == b.top_k;
}

inline int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline void reply_error(httplib::Response& res, int status, const std::string& message,
                        const std::string& param = "", const std::string& code = "") {
  res.status = status;
  res.set_content(error_body(status, message, param, code), "application/json");
}

// Counts a request as in flight for as long as its handler runs.
class InFlight {
 public:
  explicit InFlight(std::atomic<int64_t>& counter) : counter_(counter), count_(++counter) {}
  ~InFlight() { --counter_; }
  int64_t count() const { return count_; }

 private:
  std::atomic<int64_t>& counter_;
  int64_t count_;
};

// httplib 0.11 listens with a backlog of 5: a burst of clients connecting at once (an LlmClient
// with concurrency 32, say) overflows it, and the connections it drops fail with read errors
// after a second. listen() again on the bound socket raises the backlog.
class HttpServer : public httplib::Server {
 public:
  void raise_backlog() {
    const socket_t fd = svr_sock_;
    if (fd != INVALID_SOCKET) ::listen(fd, SOMAXCONN);
  }
};

inline constexpr const char* kModelsPath = "/v1/models";
inline constexpr const char* kChatPath = "/v1/chat/completions";
inline constexpr const char* kCompletionsPath = "/v1/completions";

}  // namespace server_internal

struct OpenAiServer::Impl {
  Impl(const Transformer& m, Tokenizer t, ServerOptions o)
      : model(m), tokenizer(std::move(t)), options(std::move(o)) {}

  const Transformer& model;
  Tokenizer tokenizer;
  ServerOptions options;
  int64_t context = 0;
  int32_t bos_id = -1;
  std::vector<int32_t> eos_ids;
  int64_t created = server_internal::unix_now();

  server_internal::HttpServer http;
  std::thread listener, worker;
  std::atomic<bool> listener_done{false};
  int bound_port = 0;
  std::mutex lifecycle;  // start() and stop()
  bool started = false, stopped = false, listening_stopped = false;
  std::atomic<bool> draining{false};  // new completion requests get 503

  std::mutex mutex;  // guards the queue and the flags below
  std::condition_variable wake;
  std::deque<std::shared_ptr<server_internal::Job>> queue;
  bool stopping = false;
  bool paused = false;
  std::atomic<bool> abort{false};  // read by the running batch at every step

  std::atomic<int64_t> in_flight{0}, answered{0}, batches{0}, largest_batch{0}, steps{0}, joined{0};
  std::atomic<int64_t> abandoned{0}, timed_out{0}, unauthorized{0};
  std::atomic<uint64_t> next_stream{1}, next_id{0};

  void install_routes();
  // Answers 401 and returns false unless the request carries the API key (or none is set).
  bool authorized(const httplib::Request& req, httplib::Response& res);
  httplib::Server::Handler guarded(httplib::Server::Handler handler);
  void handle_completion(const httplib::Request& req, httplib::Response& res, Endpoint endpoint);
  // Queues the job (ShuttingDown when the server is stopping).
  void enqueue(const std::shared_ptr<server_internal::Job>& job);
  // Queues the job and waits for its generation, watching the deadline and the connection.
  Generation run(std::shared_ptr<server_internal::Job> job,
                 server_internal::Clock::time_point deadline, int connection);
  // Queues a streamed job and answers with its events as its tokens come (io/openai_stream.h).
  void stream(const std::shared_ptr<server_internal::Job>& job, httplib::Response& res,
              StreamRequest request, server_internal::Clock::time_point deadline, int connection,
              std::shared_ptr<server_internal::InFlight> guard);
  void abandon(const std::shared_ptr<server_internal::Job>& job);
  void stop_listening();  // with `lifecycle` held
  std::vector<std::shared_ptr<server_internal::Job>>
  take_batch();  // with `mutex` held and the queue non-empty
  // The request of each row of the running batch; null once answered (the row is free).
  using BatchRows = std::vector<std::shared_ptr<server_internal::Job>>;
  void run_batch(BatchRows rows);
  // Answers row `row`'s request with the row's generation and frees the row.
  void finish_row(DecodingBatch& batch, BatchRows& rows, int64_t row);
  // Gives free rows to queued requests that fit (same sampling, prompt and max_tokens within the
  // batch's room), oldest first, adding rows up to --max-batch when the free ones are too few;
  // returns how many joined.
  int64_t join_queued(DecodingBatch& batch, BatchRows& rows, const SamplingOptions& sampling);
  void generation_loop();
};

}  // namespace rlaif
