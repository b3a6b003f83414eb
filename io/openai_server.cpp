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
#include "io/openai_server_impl.h"
#include "io/openai_stream.h"
#include "model/generate.h"
#include "runtime/error.h"

namespace rlaif {

using namespace server_internal;

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
  st.joined = impl_->joined;
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
