#include "io/openai_stream.h"

#include <algorithm>

#include "io/streaming_text.h"
#include "runtime/error.h"

namespace rlaif {

using Clock = std::chrono::steady_clock;

// How often a stream waiting for tokens looks at its connection and its deadline.
constexpr auto kStreamWatchInterval = std::chrono::milliseconds(20);

void TokenFeed::publish(const Generation& so_far, bool last) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (state_.last || state_.error_status != 0) return;
    state_.so_far = so_far;
    state_.last = last;
    ++state_.version;
  }
  changed_.notify_all();
}

void TokenFeed::fail(int status, std::string message) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (state_.last || state_.error_status != 0) return;
    state_.error_status = status;
    state_.error_message = std::move(message);
  }
  changed_.notify_all();
}

TokenFeed::Snapshot TokenFeed::wait(uint64_t seen_version, Clock::time_point until) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_until(lock, until, [&] {
    return state_.version != seen_version || state_.last || state_.error_status != 0;
  });
  return state_;
}

StreamEnd write_stream(httplib::DataSink& sink, TokenFeed& feed, const Tokenizer& tokenizer,
                       const StreamRequest& request, Clock::time_point deadline,
                       const std::function<bool()>& client_gone,
                       const std::function<void()>& end_row,
                       const std::function<void()>& finishing) {
  const bool continue_prompt = request.endpoint == Endpoint::completion;
  auto send = [&](const std::string& event) { return sink.write(event.data(), event.size()); };
  auto gone = [&] {
    end_row();
    finishing();
    return StreamEnd::client_gone;
  };
  for (const std::string& e : stream_opening(request.endpoint, request.meta)) {
    if (!send(e)) return gone();
  }
  StreamingText text(tokenizer, request.prompt, continue_prompt, request.stop);
  uint64_t seen = 0;
  for (;;) {
    const TokenFeed::Snapshot now =
        feed.wait(seen, std::min(deadline, Clock::now() + kStreamWatchInterval));
    if (now.error_status != 0) {
      finishing();
      send(stream_error(now.error_status, now.error_message, ""));
      sink.done();
      return StreamEnd::failed;
    }
    bool complete = now.last;
    if (now.version != seen) {
      seen = now.version;
      const std::string piece = text.advance(now.so_far, now.last);
      if (!piece.empty() && !send(stream_piece(request.endpoint, request.meta, piece))) {
        return gone();
      }
      if (text.stopped() && !complete) {
        end_row();  // a stop string ends the answer: the batch can drop the row
        complete = true;
      }
    }
    if (complete) {
      // finish_completion of the same tokens gives the finish_reason and the usage (tokens up
      // to the stop string's end), as a response that is not streamed reports them.
      const ApiCompletion c = finish_completion(tokenizer, now.so_far, request.prompt,
                                                continue_prompt, request.stop, false);
      finishing();
      for (const std::string& e :
           stream_closing(request.endpoint, request.meta, c, request.include_usage)) {
        if (!send(e)) return gone();
      }
      sink.done();
      return StreamEnd::answered;
    }
    if (Clock::now() >= deadline) {
      end_row();
      finishing();
      send(stream_error(504,
                        Error::concat("the request did not finish within ", request.timeout_s,
                                      " s (--request-timeout)"),
                        "timeout"));
      sink.done();
      return StreamEnd::timed_out;
    }
    if (client_gone()) return gone();
  }
}

}  // namespace rlaif
