#include "model/continuous_generation.h"

#include <algorithm>
#include <deque>

#include "model/decoding_batch.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

// The state of one run: the prompts not yet started, and the prompt in each row of the batch.
class Scheduler {
 public:
  Scheduler(const Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
            const GenerationOptions& options, const std::vector<uint64_t>& stream_ids, int64_t rows)
      : model_(model),
        prompts_(prompts),
        options_(options),
        stream_ids_(stream_ids),
        rows_(rows),
        context_(model.config().max_position_embeddings) {
    for (size_t i = 0; i < prompts.size(); ++i) waiting_.push_back(i);
  }

  bool waiting() const { return !waiting_.empty(); }

  // New tokens prompt i gets alone: max_new_tokens, cut by the context.
  int64_t limit(size_t i) const { return std::min(options_.max_new_tokens, context_ - length(i)); }

  // Starts a batch with the first waiting prompts: in their order, as many as fit together
  // (each with its whole limit) up to `rows`. The first always fits.
  std::unique_ptr<DecodingBatch> start_batch() {
    std::vector<size_t> chosen;
    int64_t longest = 0;
    for (auto it = waiting_.begin();
         it != waiting_.end() && static_cast<int64_t>(chosen.size()) < rows_;) {
      const int64_t l = std::max(longest, length(*it));
      chosen.push_back(*it);
      if (fits_together(chosen, l)) {
        longest = l;
        it = waiting_.erase(it);
      } else {
        chosen.pop_back();
        ++it;
      }
    }
    auto batch = std::make_unique<DecodingBatch>(model_, options_.sampling, options_.eos_ids,
                                                 capacity(longest));
    std::vector<std::vector<int32_t>> prompts;
    std::vector<uint64_t> streams;
    for (size_t i : chosen) {
      prompts.push_back(prompts_[i]);
      streams.push_back(stream(i));
    }
    batch->start(prompts, streams);
    in_row_ = chosen;
    return batch;
  }

  // Gives ended rows (their prompts already reported) to the first waiting prompts that fit
  // left of the cached positions with their whole limit, adding rows up to `rows` when the
  // ended ones are too few; returns how many joined.
  int64_t join_waiting(DecodingBatch& batch) {
    std::vector<size_t> fitting;
    for (auto it = waiting_.begin(); it != waiting_.end() && static_cast<int64_t>(fitting.size()) <
                                                                 rows_ - batch.live_rows();) {
      if (batch.can_join(length(*it)) && limit(*it) <= batch.room()) {
        fitting.push_back(*it);
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
    const int64_t free = batch.rows() - batch.live_rows();
    if (static_cast<int64_t>(fitting.size()) > free) {
      batch.add_rows(static_cast<int64_t>(fitting.size()) - free);
      in_row_.resize(static_cast<size_t>(batch.rows()));
    }
    std::vector<int64_t> rows;
    std::vector<std::vector<int32_t>> prompts;
    std::vector<uint64_t> streams;
    for (int64_t r = 0; r < batch.rows() && rows.size() < fitting.size(); ++r) {
      if (batch.live(r)) continue;
      const size_t i = fitting[rows.size()];
      rows.push_back(r);
      prompts.push_back(prompts_[i]);
      streams.push_back(stream(i));
      in_row_[static_cast<size_t>(r)] = i;
    }
    batch.join(rows, prompts, streams);  // one prefill for them all
    return static_cast<int64_t>(rows.size());
  }

  // Drops the ended rows once they are half the batch or more (DecodingBatch::drop_ended_rows);
  // returns whether it did.
  bool drop_ended_rows(DecodingBatch& batch) {
    const std::vector<int64_t> kept = batch.drop_ended_rows();
    if (kept.empty()) return false;
    std::vector<size_t> prompts;
    for (int64_t r : kept) prompts.push_back(in_row_[static_cast<size_t>(r)]);
    in_row_ = std::move(prompts);
    return true;
  }

  size_t prompt_in(int64_t row) const { return in_row_[static_cast<size_t>(row)]; }

 private:
  int64_t length(size_t i) const { return static_cast<int64_t>(prompts_[i].size()); }
  uint64_t stream(size_t i) const { return stream_ids_.empty() ? i : stream_ids_[i]; }
  int64_t capacity(int64_t longest) const {
    return std::min(context_, kJoinRoomFactor * (longest + options_.max_new_tokens));
  }
  bool fits_together(const std::vector<size_t>& chosen, int64_t longest) const {
    return std::all_of(chosen.begin(), chosen.end(),
                       [&](size_t i) { return longest + limit(i) <= capacity(longest); });
  }

  const Transformer& model_;
  const std::vector<std::vector<int32_t>>& prompts_;
  const GenerationOptions& options_;
  const std::vector<uint64_t>& stream_ids_;
  const int64_t rows_, context_;
  std::deque<size_t> waiting_;
  std::vector<size_t> in_row_;
};

}  // namespace

ContinuousGenerationStats generate_continuously(const Transformer& model,
                                                const std::vector<std::vector<int32_t>>& prompts,
                                                const GenerationOptions& options,
                                                const std::vector<uint64_t>& stream_ids,
                                                int64_t rows, const GenerationDone& done,
                                                const std::function<bool()>& stop) {
  RLAIF_CHECK(rows >= 1, "generate_continuously: ", rows, " rows (at least 1)");
  RLAIF_CHECK(stream_ids.empty() || stream_ids.size() == prompts.size(),
              "generate: ", stream_ids.size(), " stream ids for ", prompts.size(), " prompts");
  const int64_t context = model.config().max_position_embeddings;
  for (size_t i = 0; i < prompts.size(); ++i) {
    RLAIF_CHECK(!prompts[i].empty(), "generate: prompt ", i, " is empty (start it with BOS)");
    RLAIF_CHECK(static_cast<int64_t>(prompts[i].size()) < context, "generate: prompt ", i, " of ",
                prompts[i].size(), " tokens leaves no room in the model's context of ", context);
  }
  if (options.max_new_tokens <= 0) {
    for (size_t i = 0; i < prompts.size(); ++i) done(i, Generation{});
    return {};
  }
  ContinuousGenerationStats stats;
  Scheduler scheduler(model, prompts, options, stream_ids, rows);
  while (scheduler.waiting()) {
    std::unique_ptr<DecodingBatch> batch = scheduler.start_batch();
    ++stats.batches;
    for (;;) {
      ++stats.steps;
      for (int64_t row : batch->sample()) {
        const size_t i = scheduler.prompt_in(row);
        const Generation& so_far = batch->generation(row);
        if (so_far.stopped_at_eos ||
            static_cast<int64_t>(so_far.tokens.size()) >= scheduler.limit(i)) {
          batch->end_row(row);
          done(i, so_far);
        }
      }
      if (stop && stop()) return stats;
      if (batch->any_live()) batch->decode();
      const int64_t joined = scheduler.join_waiting(*batch);
      stats.joined += joined;
      if (!batch->any_live()) break;
      if (joined == 0 && scheduler.drop_ended_rows(*batch)) ++stats.shrunk;
    }
  }
  return stats;
}

}  // namespace rlaif
