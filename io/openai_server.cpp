#include "io/openai_server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "io/api_key.h"
#include "io/http_batch.h"
#include "io/http_connection.h"
#include "io/model_dir.h"
#include "io/openai_protocol.h"
#include "io/openai_stream.h"
#include "model/generate.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

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
constexpr auto kWatchInterval = std::chrono::milliseconds(20);

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

bool same_sampling(const SamplingOptions& a, const SamplingOptions& b) {
  return a.temperature == b.temperature && a.top_p == b.top_p && a.top_k == b.top_k &&
         a.seed == b.seed;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void reply_error(httplib::Response& res, int status, const std::string& message,
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

constexpr const char* kModelsPath = "/v1/models";
constexpr const char* kChatPath = "/v1/chat/completions";
constexpr const char* kCompletionsPath = "/v1/completions";

}  // namespace

struct OpenAiServer::Impl {
  Impl(const Transformer& m, Tokenizer t, ServerOptions o)
      : model(m), tokenizer(std::move(t)), options(std::move(o)) {}

  const Transformer& model;
  Tokenizer tokenizer;
  ServerOptions options;
  int64_t context = 0;
  int32_t bos_id = -1;
  std::vector<int32_t> eos_ids;
  int64_t created = unix_now();

  HttpServer http;
  std::thread listener, worker;
  std::atomic<bool> listener_done{false};
  int bound_port = 0;
  std::mutex lifecycle;  // start() and stop()
  bool started = false, stopped = false, listening_stopped = false;
  std::atomic<bool> draining{false};  // new completion requests get 503

  std::mutex mutex;  // guards the queue and the flags below
  std::condition_variable wake;
  std::deque<std::shared_ptr<Job>> queue;
  bool stopping = false;
  bool paused = false;
  std::atomic<bool> abort{false};  // read by the running batch at every step

  std::atomic<int64_t> in_flight{0}, answered{0}, batches{0}, largest_batch{0}, steps{0};
  std::atomic<int64_t> abandoned{0}, timed_out{0}, unauthorized{0};
  std::atomic<uint64_t> next_stream{1}, next_id{0};

  void install_routes();
  // Answers 401 and returns false unless the request carries the API key (or none is set).
  bool authorized(const httplib::Request& req, httplib::Response& res);
  httplib::Server::Handler guarded(httplib::Server::Handler handler);
  void handle_completion(const httplib::Request& req, httplib::Response& res, Endpoint endpoint);
  // Queues the job (ShuttingDown when the server is stopping).
  void enqueue(const std::shared_ptr<Job>& job);
  // Queues the job and waits for its generation, watching the deadline and the connection.
  Generation run(std::shared_ptr<Job> job, Clock::time_point deadline, int connection);
  // Queues a streamed job and answers with its events as its tokens come (io/openai_stream.h).
  void stream(const std::shared_ptr<Job>& job, httplib::Response& res, StreamRequest request,
              Clock::time_point deadline, int connection, std::shared_ptr<InFlight> guard);
  void abandon(const std::shared_ptr<Job>& job);
  void stop_listening();                           // with `lifecycle` held
  std::vector<std::shared_ptr<Job>> take_batch();  // with `mutex` held and the queue non-empty
  void run_batch(const std::vector<std::shared_ptr<Job>>& batch);
  void generation_loop();
};

void OpenAiServer::Impl::install_routes() {
  // Enough HTTP threads for max_concurrent waiting requests plus a few to answer 429s and GETs
  // at once; with fewer, excess requests would wait in httplib's queue instead of being refused.
  const size_t threads = static_cast<size_t>(std::min(options.max_concurrent, 1024)) + 8;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // httplib's default socket options set SO_REUSEPORT, with which a second server on a taken
  // port starts without error and the kernel splits the connections between the two. Only
  // SO_REUSEADDR (a restart may bind while old connections sit in TIME_WAIT).
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // Responses go out as a header write and a body write: without TCP_NODELAY the body waits
  // for the client's delayed ACK of the header (40 ms on Linux) whenever the client does not
  // happen to send something first.
  http.set_tcp_nodelay(true);
  http.set_payload_max_length(options.max_body_bytes);
  http.set_keep_alive_max_count(100);

  http.Get(kModelsPath, guarded([this](const httplib::Request&, httplib::Response& res) {
             res.set_content(models_body(options.model_name, created), "application/json");
           }));
  http.Get(R"(/v1/models/(.+))",
           guarded([this](const httplib::Request& req, httplib::Response& res) {
             if (req.matches[1] == options.model_name)
               res.set_content(model_body(options.model_name, created), "application/json");
             else
               reply_error(res, 404,
                           "the model '" + std::string(req.matches[1]) +
                               "' does not exist; this server has '" + options.model_name + "'",
                           "model", "model_not_found");
           }));
  http.Post(kChatPath, guarded([this](const httplib::Request& req, httplib::Response& res) {
              handle_completion(req, res, Endpoint::chat);
            }));
  http.Post(kCompletionsPath, guarded([this](const httplib::Request& req, httplib::Response& res) {
              handle_completion(req, res, Endpoint::completion);
            }));

  // Everything else: 405 for a known path asked with the wrong method, else 404.
  auto fallback = guarded([](const httplib::Request& req, httplib::Response& res) {
    const std::string& p = req.path;
    const char* allowed = p == kModelsPath || p.rfind(std::string(kModelsPath) + "/", 0) == 0
                              ? "GET"
                          : p == kChatPath || p == kCompletionsPath ? "POST"
                                                                    : nullptr;
    if (allowed != nullptr && req.method != allowed && req.method != "HEAD") {
      res.set_header("Allow", allowed);
      reply_error(res, 405, req.method + " is not allowed on " + p + "; use " + allowed, "",
                  "method_not_allowed");
    } else {
      reply_error(res, 404, "unknown endpoint: " + req.method + " " + p, "", "unknown_url");
    }
  });
  http.Get(".*", fallback);
  http.Post(".*", fallback);
  http.Put(".*", fallback);
  http.Patch(".*", fallback);
  http.Delete(".*", fallback);
  http.Options(".*", fallback);

  // httplib's own refusals (413 for a body over the limit, 400 for a malformed HTTP request)
  // come with no body: give them an OpenAI-shaped one. Responses the handlers made keep theirs.
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string message = "HTTP status " + std::to_string(res.status);
        if (res.status == 413)
          message = "the request body exceeds " + std::to_string(options.max_body_bytes) +
                    " bytes (--max-body-bytes)";
        else if (res.status == 400 && !req.has_header("Content-Length") &&
                 !req.has_header("Transfer-Encoding"))
          message = req.method + " " + req.path + ": the request has no body (no Content-Length)";
        else if (res.status == 400)
          message = "malformed HTTP request";
        reply_error(res, res.status, message);
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        reply_error(res, 500, what);
      });
  if (options.log_requests)
    http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      std::fprintf(stderr, "%s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
    });
}

bool OpenAiServer::Impl::authorized(const httplib::Request& req, httplib::Response& res) {
  if (options.api_key.empty()) return true;
  if (api_key_matches(req.get_header_value("Authorization"), options.api_key)) return true;
  ++unauthorized;
  res.set_header("WWW-Authenticate", "Bearer");
  reply_error(res, 401,
              req.has_header("Authorization")
                  ? "incorrect API key: send the key this server was started with "
                    "(rlaif serve --api-key) as 'Authorization: Bearer KEY'"
                  : "this server needs an API key: send 'Authorization: Bearer KEY' with the key "
                    "it was started with (rlaif serve --api-key)",
              "", "invalid_api_key");
  return false;
}

httplib::Server::Handler OpenAiServer::Impl::guarded(httplib::Server::Handler handler) {
  return [this, handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    if (authorized(req, res)) handler(req, res);
  };
}

void OpenAiServer::Impl::handle_completion(const httplib::Request& req, httplib::Response& res,
                                           Endpoint endpoint) {
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(options.request_timeout_s));
  // Shared with a stream's writer: a streamed request is in flight until its last event.
  auto guard = std::make_shared<InFlight>(in_flight);
  try {
    if (draining) throw ShuttingDown();
    if (guard->count() > options.max_concurrent) {
      res.set_header("Retry-After", "1");
      throw ApiError(429,
                     "too many requests in flight (" + std::to_string(options.max_concurrent) +
                         ", --max-concurrent); retry later",
                     "", "rate_limit_exceeded");
    }
    ApiRequest r = parse_api_request(req.body, endpoint, options.chat_template);
    auto job = std::make_shared<Job>();
    // A model's Jinja chat template writes its own BOS; raw prompts and single-slot templates
    // get the tokenizer's, when it adds one.
    const bool template_has_bos = endpoint == Endpoint::chat && options.chat_template.is_jinja();
    if (bos_id >= 0 && !template_has_bos) job->prompt.push_back(bos_id);
    std::vector<int32_t> body = tokenizer.encode(r.prompt, false);
    job->prompt.insert(job->prompt.end(), body.begin(), body.end());
    const int64_t n = static_cast<int64_t>(job->prompt.size());
    const char* prompt_param = endpoint == Endpoint::chat ? "messages" : "prompt";
    if (n >= context)
      throw ApiError(400,
                     Error::concat("the prompt is ", n, " tokens and the model's context is ",
                                   context, " tokens: no room is left for a completion"),
                     prompt_param, "context_length_exceeded");
    if (r.max_tokens && *r.max_tokens > options.max_tokens_limit)
      throw ApiError(400,
                     Error::concat("max_tokens is ", *r.max_tokens, "; this server allows at most ",
                                   options.max_tokens_limit, " (--max-tokens-limit)"),
                     "max_tokens");
    job->max_new_tokens = std::min(r.max_tokens.value_or(options.max_tokens_limit), context - n);
    if (r.temperature > 0) {
      job->sampling.temperature = r.temperature;
      job->sampling.top_p = r.top_p;
      job->sampling.seed = r.seed.value_or(options.seed);
      job->stream = r.seed ? 0 : next_stream++;
    } else {
      job->sampling.temperature = 0;  // greedy: every greedy request shares one batch key
    }
    char id[40];
    std::snprintf(id, sizeof id, "%s-%llx%06llx", endpoint == Endpoint::chat ? "chatcmpl" : "cmpl",
                  static_cast<unsigned long long>(created),
                  static_cast<unsigned long long>(next_id++));
    ResponseMeta meta{id, unix_now(), options.model_name};
    if (r.stream) {
      stream(job, res,
             {endpoint, meta, job->prompt, r.stop, r.include_usage, options.request_timeout_s},
             deadline, connection_of(req), guard);
      return;
    }
    Generation g = run(job, deadline, connection_of(req));
    ApiCompletion c = finish_completion(tokenizer, g, job->prompt, endpoint == Endpoint::completion,
                                        r.stop, false);
    ++answered;
    res.set_content(completion_body(endpoint, meta, c), "application/json");
  } catch (const ApiError& e) {
    reply_error(res, e.status(), e.what(), e.param(), e.code());
  } catch (const ShuttingDown& e) {
    reply_error(res, 503, e.what());
  } catch (const ClientGone& e) {
    reply_error(res, 499, e.what());  // nginx's "client closed request", for the log
  } catch (const std::exception& e) {
    reply_error(res, 500, std::string("generation failed: ") + e.what());
  }
}

void OpenAiServer::Impl::enqueue(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (stopping) throw ShuttingDown();
    queue.push_back(job);
  }
  wake.notify_all();
}

Generation OpenAiServer::Impl::run(std::shared_ptr<Job> job, Clock::time_point deadline,
                                   int connection) {
  std::future<Generation> result = job->result.get_future();
  enqueue(job);
  for (;;) {
    if (result.wait_until(std::min(deadline, Clock::now() + kWatchInterval)) ==
        std::future_status::ready)
      return result.get();
    if (Clock::now() >= deadline) {
      abandon(job);
      ++timed_out;
      throw ApiError(504,
                     Error::concat("the request did not finish within ", options.request_timeout_s,
                                   " s (--request-timeout)"),
                     "", "timeout");
    }
    if (connection >= 0 && peer_closed(connection)) {
      abandon(job);
      ++abandoned;
      throw ClientGone();
    }
  }
}

void OpenAiServer::Impl::stream(const std::shared_ptr<Job>& job, httplib::Response& res,
                                StreamRequest request, Clock::time_point deadline, int connection,
                                std::shared_ptr<InFlight> guard) {
  job->feed = std::make_shared<TokenFeed>();
  enqueue(job);  // before any byte is sent, so that a stopping server still answers 503
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, job, request = std::move(request), deadline, connection, guard](
          size_t, httplib::DataSink& sink) {
        const StreamEnd end = write_stream(
            sink, *job->feed, tokenizer, request, deadline,
            [&] { return connection >= 0 && peer_closed(connection); }, [&] { abandon(job); });
        if (end == StreamEnd::answered) ++answered;
        if (end == StreamEnd::timed_out) ++timed_out;
        if (end == StreamEnd::client_gone) ++abandoned;
        return end != StreamEnd::client_gone;
      },
      // Also when the events were never written (the client left before the headers went out):
      // nobody reads the row any more. A finished job is no longer queued or generating.
      [this, job](bool) { abandon(job); });
}

void OpenAiServer::Impl::abandon(const std::shared_ptr<Job>& job) {
  job->wanted = false;  // a batch that already holds it ends its row at the next step
  std::lock_guard<std::mutex> lock(mutex);
  auto it = std::find(queue.begin(), queue.end(), job);
  if (it != queue.end()) queue.erase(it);
}

std::vector<std::shared_ptr<Job>> OpenAiServer::Impl::take_batch() {
  std::vector<std::shared_ptr<Job>> batch;
  const SamplingOptions key = queue.front()->sampling;
  int64_t longest = 0, most = 0;
  for (auto it = queue.begin();
       it != queue.end() && static_cast<int64_t>(batch.size()) < options.max_batch;) {
    const Job& job = **it;
    if (!job.wanted) {
      it = queue.erase(it);
      continue;
    }
    int64_t l = std::max<int64_t>(longest, static_cast<int64_t>(job.prompt.size()));
    int64_t m = std::max(most, job.max_new_tokens);
    // Every job fits alone (prompt + max_new_tokens <= context); a batch must fit as a whole,
    // or generate() would clip the steps of its shorter prompts.
    if (same_sampling(job.sampling, key) && l + m <= context) {
      batch.push_back(*it);
      longest = l;
      most = m;
      it = queue.erase(it);
    } else {
      ++it;
    }
  }
  return batch;
}

void OpenAiServer::Impl::run_batch(const std::vector<std::shared_ptr<Job>>& batch) {
  GenerationOptions go;
  go.sampling = batch.front()->sampling;
  go.eos_ids = eos_ids;
  go.max_new_tokens = 0;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<uint64_t> streams;
  for (const auto& job : batch) {
    prompts.push_back(job->prompt);
    streams.push_back(job->stream);
    go.max_new_tokens = std::max(go.max_new_tokens, job->max_new_tokens);
  }
  try {
    // A row ends when its request reached its own max_tokens or is no longer wanted, so the
    // batch ends once every request has what it asked for or has gone.
    // A streamed request's row is published after every step (its last token included).
    auto keep_row = [&batch](int64_t row, const Generation& so_far) {
      const Job& job = *batch[static_cast<size_t>(row)];
      const bool more = job.wanted && !so_far.stopped_at_eos &&
                        static_cast<int64_t>(so_far.tokens.size()) < job.max_new_tokens;
      if (job.feed) job.feed->publish(so_far, !more);
      return more;
    };
    auto on_step = [this](int64_t step) {
      ++steps;
      if (options.on_step) options.on_step(step);
      if (abort) throw ShuttingDown();
    };
    std::vector<Generation> out = generate(model, prompts, go, streams, on_step, keep_row);
    ++batches;
    int64_t size = static_cast<int64_t>(batch.size());
    for (int64_t seen = largest_batch;
         size > seen && !largest_batch.compare_exchange_weak(seen, size);) {
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      Generation& g = out[i];
      const auto limit = static_cast<size_t>(batch[i]->max_new_tokens);
      if (g.tokens.size() > limit) {  // the batch ran longer than this request asked for
        g.tokens.resize(limit);
        g.stopped_at_eos = false;
      }
      if (batch[i]->feed) batch[i]->feed->publish(g, true);
      batch[i]->result.set_value(std::move(g));
    }
  } catch (const ShuttingDown& e) {
    for (const auto& job : batch) {
      if (job->feed) job->feed->fail(503, e.what());
      job->result.set_exception(std::current_exception());
    }
  } catch (...) {
    std::string what = "generation failed";
    try {
      throw;
    } catch (const std::exception& e) {
      what += std::string(": ") + e.what();
    } catch (...) {
    }
    for (const auto& job : batch) {
      if (job->feed) job->feed->fail(500, what);
      job->result.set_exception(std::current_exception());
    }
  }
}

void OpenAiServer::Impl::generation_loop() {
  for (;;) {
    std::vector<std::shared_ptr<Job>> batch;
    {
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait(lock, [this] { return stopping || (!paused && !queue.empty()); });
      if (stopping) return;  // stop() fails whatever is still queued
      batch = take_batch();
    }
    run_batch(batch);
  }
}

OpenAiServer::OpenAiServer(const Transformer& model, Tokenizer tokenizer, ServerOptions options)
    : impl_(std::make_unique<Impl>(model, std::move(tokenizer), std::move(options))) {
  const ServerOptions& o = impl_->options;
  RLAIF_CHECK(o.port >= 0 && o.port <= 65535, "serve: --port ", o.port, " is not in [0, 65535]");
  RLAIF_CHECK(o.max_batch >= 1, "serve: --max-batch must be >= 1, got ", o.max_batch);
  RLAIF_CHECK(o.max_concurrent >= 1, "serve: --max-concurrent must be >= 1, got ",
              o.max_concurrent);
  RLAIF_CHECK(o.max_tokens_limit >= 1, "serve: --max-tokens-limit must be >= 1, got ",
              o.max_tokens_limit);
  RLAIF_CHECK(o.max_body_bytes >= 1, "serve: --max-body-bytes must be >= 1");
  RLAIF_CHECK(!o.model_name.empty(), "serve: the served model name is empty");
  RLAIF_CHECK(std::isfinite(o.request_timeout_s) && o.request_timeout_s > 0,
              "serve: --request-timeout must be a positive number of seconds, got ",
              o.request_timeout_s);
  RLAIF_CHECK(
      !o.api_key.empty() ||
          is_loopback_host(o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host),
      "serve: --host ", o.host,
      " is not a loopback address and no --api-key was given: anyone who can reach it "
      "could use the model. Give --api-key (or RLAIF_API_KEY, or --api-key-file), or "
      "listen on 127.0.0.1");
  for (char c : o.api_key)
    RLAIF_CHECK(static_cast<unsigned char>(c) > 0x20 && c != 0x7f,
                "serve: the --api-key contains a space or a control character");
  const ModelConfig& c = model.config();
  impl_->context = c.max_position_embeddings;
  RLAIF_CHECK(impl_->context > 1, "serve: the model's context (max_position_embeddings) is ",
              impl_->context);
  impl_->bos_id = impl_->tokenizer.adds_bos() ? impl_->tokenizer.bos_id() : -1;
  impl_->eos_ids = generation_stop_ids(c, impl_->tokenizer);
  impl_->install_routes();
}

OpenAiServer::~OpenAiServer() {
  stop();
}

int OpenAiServer::start() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.lifecycle);
  RLAIF_CHECK(!s.started, "OpenAiServer::start: already started");
  const std::string& host = s.options.host;
  if (s.options.port == 0) {
    s.bound_port = s.http.bind_to_any_port(host);
  } else {
    s.bound_port = s.http.bind_to_port(host, s.options.port) ? s.options.port : -1;
  }
  RLAIF_CHECK(s.bound_port > 0, "serve: cannot listen on --host ", host, " --port ", s.options.port,
              " (port in use, or not an address of this machine?)");
  s.http.raise_backlog();
  s.started = true;
  s.worker = std::thread([&s] { s.generation_loop(); });
  s.listener = std::thread([&s] {
    s.http.listen_after_bind();
    s.listener_done = true;
  });
  // httplib's stop() does nothing until the accept loop runs: wait for it so that a stop()
  // right after start() cannot be lost.
  while (!s.http.is_running() && !s.listener_done)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return s.bound_port;
}

void OpenAiServer::Impl::stop_listening() {
  draining = true;
  if (listening_stopped) return;
  listening_stopped = true;
  http.stop();  // closes the listening socket; connections already accepted carry on
}

void OpenAiServer::stop_accepting() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.lifecycle);
  if (s.started && !s.stopped) s.stop_listening();
}

bool OpenAiServer::drain_and_stop(double drain_s) {
  stop_accepting();
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(std::max(0.0, drain_s)));
  while (impl_->in_flight > 0 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const bool drained = impl_->in_flight == 0;
  stop();
  return drained;
}

void OpenAiServer::stop() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.lifecycle);
  if (!s.started || s.stopped) return;
  s.stopped = true;
  s.draining = true;
  std::deque<std::shared_ptr<Job>> left;
  {
    std::lock_guard<std::mutex> q(s.mutex);
    s.stopping = true;
    s.abort = true;
    left.swap(s.queue);
  }
  s.wake.notify_all();
  for (const auto& job : left) job->result.set_exception(std::make_exception_ptr(ShuttingDown()));
  s.worker.join();     // a running batch stops at its next step and fails its requests
  s.stop_listening();  // then the HTTP threads, which by now have answered everything
  s.listener.join();
}

int OpenAiServer::port() const {
  return impl_->bound_port;
}

ServerStats OpenAiServer::stats() const {
  ServerStats st;
  st.requests = impl_->answered;
  st.batches = impl_->batches;
  st.largest_batch = impl_->largest_batch;
  st.in_flight = impl_->in_flight;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    st.queued = static_cast<int64_t>(impl_->queue.size());
  }
  st.steps = impl_->steps;
  st.abandoned = impl_->abandoned;
  st.timed_out = impl_->timed_out;
  st.unauthorized = impl_->unauthorized;
  return st;
}

void OpenAiServer::pause_generation(bool paused) {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->paused = paused;
  }
  impl_->wake.notify_all();
}

}  // namespace rlaif
