// A streamed completion of `rlaif serve` (stream: true), sent while it is generated: the batch
// that holds the request publishes its row's tokens after every decoding step into a TokenFeed,
// and the request's HTTP thread turns them into server-sent events as they come
// (StreamingText decides what text is certain), so the first words reach the client after the
// first step rather than after the whole answer.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "io/openai_protocol.h"
#include "io/tokenizer.h"
#include "model/generate.h"

namespace rlaif {

// One streamed request's row, shared by the generating batch (writer) and the request (reader).
class TokenFeed {
 public:
  // The tokens so far; `last`: they are all (EOS, the request's max_tokens, or the batch's end).
  // Ignored once the feed is complete or failed.
  void publish(const Generation& so_far, bool last);
  // The batch failed (the server is shutting down, or generation threw): the HTTP status and
  // message the stream's error event carries.
  void fail(int status, std::string message);

  struct Snapshot {
    Generation so_far;
    bool last = false;
    int error_status = 0;  // nonzero once failed
    std::string error_message;
    uint64_t version = 0;  // counts publications: a new one has new tokens
  };
  // Waits until the feed changes from `seen_version`, ends, or `until` passes; returns its state.
  Snapshot wait(uint64_t seen_version, std::chrono::steady_clock::time_point until);

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  Snapshot state_;
};

struct StreamRequest {
  Endpoint endpoint = Endpoint::chat;
  ResponseMeta meta;
  std::vector<int32_t> prompt;  // with BOS
  std::vector<std::string> stop;
  bool include_usage = false;
  double timeout_s = 0;  // --request-timeout, for the error's message
};

// How a stream ended.
enum class StreamEnd { answered, timed_out, client_gone, failed };

// Writes the stream's events into `sink` as `feed` fills: the opening, a chunk per new piece of
// text, then the closing (finish_reason, usage) once the row is complete or a stop string ends it.
// After `deadline` it sends a timeout error event; when the batch fails, an error event.
// `client_gone` is asked while waiting (a closed connection ends the stream at once);
// `end_row` is called when the request needs no more tokens (a stop string, a timeout, a client
// gone), so the batch can drop its row. `finishing` is called once, before the last events are
// written (or the client is found gone): a client that sends its next request as soon as it
// reads the end must not find this one still counted as in flight.
StreamEnd write_stream(httplib::DataSink& sink, TokenFeed& feed, const Tokenizer& tokenizer,
                       const StreamRequest& request, std::chrono::steady_clock::time_point deadline,
                       const std::function<bool()>& client_gone,
                       const std::function<void()>& end_row,
                       const std::function<void()>& finishing);

}  // namespace rlaif
