// An OpenAI-compatible HTTP server for a local model (`rlaif serve`), so that a model trained
// here can be the teacher or critic of another run, or be evaluated by any OpenAI client.
//
// Endpoints: GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions and
// POST /v1/completions (bodies: io/openai_protocol.h). Any other path is 404, a known path with
// the wrong method 405; every error is an OpenAI-shaped JSON body, never a dropped connection.
//
// Batching: HTTP threads only parse, tokenize and wait. One generation thread takes the pending
// requests, up to `max_batch` whose sampling settings (temperature, top_p) are equal, and
// decodes them together in a model/decoding_batch.h batch. A request with a seed samples from
// (seed, stream 0) and one without from (the server's --seed, a stream of its own), greedy ones
// from nothing, so a response never depends on what it was batched with. Each row ends at its
// own request's max_tokens (or EOS), and its request is answered then. Batching is continuous:
// after every step, queued requests with the same sampling settings take the rows that ended,
// and new rows up to `max_batch`, if their prompt fits left of the batch's cached positions and
// their max_tokens fits what is left of its cache (kJoinRoomFactor times what its first requests
// needed, at most the context). A batch ends when no row is generating.
//
// Streaming (stream: true) sends each row's text as it is generated (io/openai_stream.h): new
// text after every step, as many tokens as the writer finds new at once. A stop string ends a
// stream, and its row, where it appears; a plain answer is generated whole, then cut there.
//
// Limits: bodies over `max_body_bytes` get 413; max_tokens over `max_tokens_limit` 400; a prompt
// that leaves no room in the model's context 400 (code context_length_exceeded); a max_tokens
// that does not fit is cut to the context (finish_reason "length"); more than `max_concurrent`
// completion requests in flight 429 (with Retry-After: 1).
//
// Abandoned work: a request still queued or generating `request_timeout_s` after it arrived is
// answered 504 (code "timeout"), and a client that closes its connection while its request
// waits is noticed within 20 ms. Either way the request leaves the queue, or its row of the
// running batch ends at its next step, ready for a queued request to take.
//
// Authentication: with `api_key` set, every endpoint answers 401 (code "invalid_api_key")
// unless the request carries "Authorization: Bearer <api_key>", compared in constant time.
// Without a key the server refuses to listen on anything but loopback.
//
// Shutdown: stop_accepting() closes the listening socket (new connections are refused) and
// answers completion requests that still arrive on open connections 503; requests in flight
// carry on. stop() then ends everything.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "io/chat_template.h"
#include "io/tokenizer.h"
#include "model/transformer.h"

namespace rlaif {

struct ServerOptions {
  std::string host = "127.0.0.1";    // anything but loopback needs an api_key
  int port = 8080;                   // 0 = any free port (OpenAiServer::start() returns it)
  std::string model_name = "rlaif";  // what /v1/models lists and every response reports
  int64_t max_batch = 16;
  size_t max_body_bytes = 1 << 20;
  int64_t max_tokens_limit = 2048;
  int max_concurrent = 64;  // completion requests queued or generating at once
  ChatTemplate chat_template;
  uint64_t seed = 0;               // the sampling seed of requests that send none
  bool log_requests = false;       // one line per request on stderr
  double request_timeout_s = 600;  // queued + generating, per completion request
  std::string api_key;             // "" = no authentication (loopback only)
  // Called by the generation thread after every decoding step, with the steps done in the
  // running batch: progress, and a point where tests can hold a batch.
  std::function<void(int64_t)> on_step;
};

struct ServerStats {
  int64_t requests = 0;       // completion requests answered with 200
  int64_t batches = 0;        // batches started
  int64_t largest_batch = 0;  // most rows in one batch
  int64_t joined = 0;         // requests that took an ended row of a running batch
  int64_t in_flight = 0;      // completion requests being handled now
  int64_t queued = 0;         // of those, the ones waiting for a batch
  int64_t steps = 0;          // decoding steps run, over every batch
  int64_t abandoned = 0;      // requests whose client closed the connection before the answer
  int64_t timed_out = 0;      // requests answered 504
  int64_t unauthorized = 0;   // requests answered 401
};

class OpenAiServer {
 public:
  // `model` must outlive the server; the server alone calls it (from its generation thread).
  // Error naming the option for a bad one (max_batch < 1, ...).
  OpenAiServer(const Transformer& model, Tokenizer tokenizer, ServerOptions options);
  // Stops the server.
  ~OpenAiServer();
  OpenAiServer(const OpenAiServer&) = delete;
  OpenAiServer& operator=(const OpenAiServer&) = delete;

  // Binds host:port (Error naming them when it cannot), then answers on background threads.
  // Returns the bound port. Connections made once it has returned are answered.
  int start();
  // The first half of a graceful shutdown: stops listening (new connections are refused) and
  // answers new completion requests on connections already open with 503; requests in flight
  // carry on (stats().in_flight tells when they are done). Safe to call more than once.
  void stop_accepting();
  // Stops listening; queued requests get 503, a running batch is abandoned at its next step
  // (503 too); returns when every thread has finished. Safe to call more than once.
  void stop();
  // stop_accepting(), then waits up to `drain_s` seconds for the requests in flight, then stop().
  // Returns whether every request in flight finished in time.
  bool drain_and_stop(double drain_s);

  int port() const;
  ServerStats stats() const;
  // While paused, the generation thread starts no new batch and requests queue up (up to
  // max_concurrent): tests use it to make bursts and the concurrency limit deterministic.
  void pause_generation(bool paused);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rlaif
