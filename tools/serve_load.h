// Loopback load for `rlaif bench serve`: clients that send chat completions to a server at a
// fixed concurrency and time them, clients that misbehave (malformed bodies, connections closed
// before or during the answer), and the process's resident memory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace rlaif::cli {

// What one client's request is.
enum class LoadKind {
  chat,              // a well-formed chat completion: must be answered 200
  streamed_chat,     // the same streamed (with its usage): 200, and timed to its first text
  malformed_json,    // a body that is not JSON: must be answered 400
  invalid_field,     // JSON with a field out of range: must be answered 400
  abandoned_early,   // a streamed request for 8 x max_tokens, closed before the answer
  abandoned_stream,  // a streamed request whose connection closes after the first bytes
};

struct LoadOptions {
  int port = 0;
  int64_t requests = 0;
  int concurrency = 1;
  int64_t max_tokens = 32;
  // Spread the well-formed requests' max_tokens evenly over 1..max_tokens (request i asks for
  // 1 + (i * 7919) mod max_tokens), a mix of short and long answers, instead of max_tokens each.
  bool mixed_lengths = false;
  // The kind of request number i (0-based); null: every request is a chat completion.
  std::function<LoadKind(int64_t i)> kind_of;
  // Called by the client threads after each request is done, with the count done so far.
  std::function<void(int64_t done)> on_done;
};

struct LoadResult {
  int64_t requests = 0, errors = 0;  // errors: answers other than the kind's expected one
  int64_t completion_tokens = 0;     // from the usage of the 200 answers
  double wall_s = 0;
  std::vector<double> latencies_s;   // of the chat completions answered 200
  std::vector<double> first_text_s;  // of the streamed ones: until their first text arrived
  std::string first_error;           // what the first error was
};

// Sends options.requests requests from options.concurrency threads (each with one keep-alive
// connection for its well-formed requests) and waits for every answer.
LoadResult run_load(const LoadOptions& options);

// The p-th quantile (0..1) of the samples, by nearest rank; NaN when there are none.
double quantile(std::vector<double> samples, double p);

// This process's resident set size in bytes (VmRSS of /proc/self/status); 0 when unknown.
int64_t resident_bytes();

}  // namespace rlaif::cli
