// The server's queue and generation thread: requests wait in one queue, the generation thread
// takes batches of compatible requests (same sampling, fitting the context together) and decodes
// them, a step at a time: each request is answered as soon as its row ends, queued requests take
// the ended rows, and a streamed request's row is published after every step.
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

void OpenAiServer::Impl::finish_row(DecodingBatch& batch, BatchRows& rows, int64_t row) {
  std::shared_ptr<Job>& job = rows[static_cast<size_t>(row)];
  if (batch.live(row)) batch.end_row(row);
  const Generation& g = batch.generation(row);
  if (job->feed) job->feed->publish(g, true);
  job->result.set_value(g);
  job.reset();
}

int64_t OpenAiServer::Impl::join_queued(DecodingBatch& batch, BatchRows& rows,
                                        const SamplingOptions& sampling) {
  const auto free = static_cast<size_t>(std::count(rows.begin(), rows.end(), nullptr));
  const size_t most = free + static_cast<size_t>(std::max<int64_t>(
                                 0, options.max_batch - static_cast<int64_t>(rows.size())));
  std::vector<std::shared_ptr<Job>> joining;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (paused || stopping) return 0;
    for (auto it = queue.begin(); it != queue.end() && joining.size() < most;) {
      const Job& j = **it;
      if (j.wanted && same_sampling(j.sampling, sampling) &&
          batch.can_join(static_cast<int64_t>(j.prompt.size())) &&
          j.max_new_tokens <= batch.room()) {
        joining.push_back(*it);
        it = queue.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (joining.size() > free) {  // more than the ended rows: the batch grows, up to --max-batch
    batch.add_rows(static_cast<int64_t>(joining.size() - free));
    rows.resize(rows.size() + joining.size() - free);
    for (int64_t seen = largest_batch, size = static_cast<int64_t>(rows.size());
         size > seen && !largest_batch.compare_exchange_weak(seen, size);) {
    }
  }
  // Every taken request holds a row before the prefill runs, so that a failing prefill fails
  // them all (run_batch's handlers) rather than leave one unanswered.
  std::vector<size_t> placed;
  for (size_t r = 0; placed.size() < joining.size(); ++r) {
    if (rows[r]) continue;
    rows[r] = joining[placed.size()];
    placed.push_back(r);
  }
  std::vector<int64_t> at;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<uint64_t> streams, seeds;
  for (size_t r : placed) {
    at.push_back(static_cast<int64_t>(r));
    prompts.push_back(rows[r]->prompt);
    streams.push_back(rows[r]->stream);
    seeds.push_back(rows[r]->sampling.seed);
  }
  batch.join(at, prompts, streams, seeds);  // one prefill for them all
  joined += static_cast<int64_t>(placed.size());
  return static_cast<int64_t>(placed.size());
}

void OpenAiServer::Impl::run_batch(BatchRows rows) {
  const SamplingOptions sampling = rows.front()->sampling;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<uint64_t> streams, seeds;
  int64_t longest = 0, most = 0;
  for (const auto& job : rows) {
    prompts.push_back(job->prompt);
    streams.push_back(job->stream);
    seeds.push_back(job->sampling.seed);
    longest = std::max<int64_t>(longest, static_cast<int64_t>(job->prompt.size()));
    most = std::max(most, job->max_new_tokens);
  }
  try {
    // take_batch() made every request fit: longest + most <= context.
    DecodingBatch batch(model, sampling, eos_ids,
                        std::min(context, kJoinRoomFactor * (longest + most)));
    batch.start(prompts, streams, seeds);
    ++batches;
    const auto size = static_cast<int64_t>(rows.size());
    for (int64_t seen = largest_batch;
         size > seen && !largest_batch.compare_exchange_weak(seen, size);) {
    }
    for (int64_t step = 1;; ++step) {
      // A row ends when its request has its max_tokens or EOS, or is no longer wanted; a
      // streamed request's row is published after every step.
      for (int64_t row : batch.sample()) {
        const Job& job = *rows[static_cast<size_t>(row)];
        const Generation& so_far = batch.generation(row);
        const bool more = job.wanted && !so_far.stopped_at_eos &&
                          static_cast<int64_t>(so_far.tokens.size()) < job.max_new_tokens;
        if (more && job.feed) job.feed->publish(so_far, false);
        if (!more) finish_row(batch, rows, row);
      }
      ++steps;
      if (options.on_step) options.on_step(step);
      if (abort) throw ShuttingDown();
      if (!batch.any_live()) break;
      batch.decode();
      if (join_queued(batch, rows, sampling) == 0) {
        const std::vector<int64_t> kept = batch.drop_ended_rows();
        if (!kept.empty()) {
          BatchRows still;
          for (int64_t r : kept) still.push_back(rows[static_cast<size_t>(r)]);
          rows = std::move(still);
        }
      }
    }
  } catch (const ShuttingDown& e) {
    for (const auto& job : rows) {
      if (!job) continue;
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
    for (const auto& job : rows) {
      if (!job) continue;
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
    run_batch(std::move(batch));
  }
}

}  // namespace rlaif
