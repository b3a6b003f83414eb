// The server's queue and generation thread: requests wait in one queue, the generation thread
// takes batches of compatible requests (same sampling, fitting the context together) and runs
// them; a streamed request's row is published after every step.
#include <algorithm>

#include "io/http_connection.h"
#include "io/openai_server_impl.h"
#include "runtime/error.h"

namespace rlaif {

using namespace server_internal;

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
          size_t, httplib::DataSink& sink) mutable {
        const StreamEnd end = write_stream(
            sink, *job->feed, tokenizer, request, deadline,
            [&] { return connection >= 0 && peer_closed(connection); }, [&] { abandon(job); },
            [&] { guard.reset(); });
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

}  // namespace rlaif
