// Bucketed gradient reduction, started as gradients become final; see gradient_buckets.h.
#include "algorithms/gradient_buckets.h"

#include <algorithm>

#include "kernels/backend.h"

namespace rlaif {

GradientBuckets::GradientBuckets(const std::vector<std::pair<std::string, Variable>>& params,
                                 Communicator& comm, int64_t span, Reduction reduction,
                                 Tensor scatter_out)
    : params_(params),
      comm_(comm),
      span_(span),
      reduction_(reduction),
      scatter_out_(std::move(scatter_out)) {
  RLAIF_CHECK(!params_.empty(), "GradientBuckets: no parameters");
  RLAIF_CHECK(span_ >= 1 && (reduction_ == Reduction::mean || span_ % comm_.size() == 0),
              "GradientBuckets: a bucket of ", span_, " elements cannot be split over ",
              comm_.size(), " ranks");
  int64_t total = 0;
  for (const auto& [name, p] : params_) {
    offset_.push_back(total);
    total += p.numel();
  }
  buckets_ = (total + span_ - 1) / span_;
  members_.resize(static_cast<size_t>(buckets_));
  for (size_t i = 0; i < params_.size(); ++i) {
    const int64_t n = params_[i].second.numel();
    if (n == 0) continue;
    for (int64_t b = offset_[i] / span_; b <= (offset_[i] + n - 1) / span_; ++b)
      members_[static_cast<size_t>(b)].push_back(i);
  }
  const Variable& p0 = params_[0].second;
  if (reduction_ == Reduction::scatter_sum) {
    RLAIF_CHECK(scatter_out_.defined() && scatter_out_.numel() == buckets_ * span_ / comm_.size() &&
                    scatter_out_.dtype() == p0.dtype() && scatter_out_.device() == p0.device(),
                "GradientBuckets: the scatter output must be ", buckets_ * span_ / comm_.size(),
                " elements of ", dtype_name(p0.dtype()), " on ", p0.device().str());
  }
  for (int k = 0; k < kBuffers; ++k)
    buffers_.push_back({Tensor::empty({span_}, p0.dtype(), p0.device()), -1, 0});
  begin();
}

GradientBuckets::~GradientBuckets() {
  for (Buffer& buffer : buffers_) {
    if (buffer.bucket < 0) continue;
    try {
      comm_.wait(buffer.ticket);
    } catch (...) {  // a destructor must not throw; the job is failing anyway
    }
  }
}

void GradientBuckets::begin() {
  // A step abandoned before finish() (an exception) may have left collectives in flight: wait
  // for them and drop their results, which belong to that step.
  for (Buffer& buffer : buffers_) {
    if (buffer.bucket >= 0) comm_.wait(buffer.ticket);
    buffer.bucket = -1;
  }
  unready_.clear();
  for (const auto& m : members_) unready_.push_back(static_cast<int>(m.size()));
  reported_.assign(params_.size(), false);
  next_ = buckets_ - 1;
}

void GradientBuckets::ready(size_t i) {
  RLAIF_CHECK(!reported_[i], "GradientBuckets: the gradient of '", params_[i].first,
              "' was reported final twice in one step (a second backward pass in the scope of "
              "DataParallelOptimizer::overlap_backward(): hold it over the last micro-batch's "
              "backward pass only)");
  reported_[i] = true;
  const int64_t n = params_[i].second.numel();
  if (n == 0) return;
  for (int64_t b = offset_[i] / span_; b <= (offset_[i] + n - 1) / span_; ++b)
    --unready_[static_cast<size_t>(b)];
  while (next_ >= 0 && unready_[static_cast<size_t>(next_)] == 0) start(next_--);
}

void GradientBuckets::finish() {
  while (next_ >= 0) start(next_--);
  // Retired in the order they started (the older first).
  const size_t first = static_cast<size_t>(started_ % kBuffers);
  for (int k = 0; k < kBuffers; ++k) retire(buffers_[(first + static_cast<size_t>(k)) % kBuffers]);
}

void GradientBuckets::start(int64_t bucket) {
  Buffer& buffer = buffers_[static_cast<size_t>(started_++ % kBuffers)];
  retire(buffer);
  Backend& be = backend_for(buffer.data.device());
  const int64_t lo = bucket * span_, hi = lo + span_;
  const int64_t end = offset_.back() + params_.back().second.numel();  // past the last parameter
  const std::vector<size_t>& members = members_[static_cast<size_t>(bucket)];
  // An all-reduce sends only the part of the last bucket that holds parameters; a reduce-scatter
  // needs the whole span (every rank's chunk of every bucket has one size).
  const int64_t sent = reduction_ == Reduction::mean ? std::min(hi, end) - lo : span_;
  // Zeros where no gradient lands in what is sent: a parameter without one, and past the last.
  bool gaps = lo + sent > end;
  for (size_t i : members) gaps = gaps || !params_[i].second.grad().defined();
  if (gaps) be.fill(buffer.data.slice(0, sent), 0.0);
  for (size_t i : members) {
    const Tensor& g = params_[i].second.grad();
    if (!g.defined()) continue;
    const int64_t a = std::max(offset_[i], lo), e = std::min(offset_[i] + g.numel(), hi);
    be.copy(g.reshape({g.numel()}).slice(a - offset_[i], e - offset_[i]),
            buffer.data.slice(a - lo, e - lo));
  }
  if (reduction_ == Reduction::mean) {
    buffer.ticket = comm_.start_all_reduce_mean(buffer.data.slice(0, sent));
  } else {
    const int64_t chunk = span_ / comm_.size();
    buffer.ticket = comm_.start_reduce_scatter_sum(
        buffer.data, scatter_out_.slice(bucket * chunk, (bucket + 1) * chunk));
  }
  buffer.bucket = bucket;
}

void GradientBuckets::retire(Buffer& buffer) {
  if (buffer.bucket < 0) return;
  comm_.wait(buffer.ticket);
  if (reduction_ == Reduction::mean) {
    Backend& be = backend_for(buffer.data.device());
    const int64_t lo = buffer.bucket * span_, hi = lo + span_;
    for (size_t i : members_[static_cast<size_t>(buffer.bucket)]) {
      const Tensor& g = params_[i].second.grad();
      if (!g.defined()) continue;
      const int64_t a = std::max(offset_[i], lo), e = std::min(offset_[i] + g.numel(), hi);
      be.copy(buffer.data.slice(a - lo, e - lo),
              g.reshape({g.numel()}).slice(a - offset_[i], e - offset_[i]));
    }
  }
  buffer.bucket = -1;
  buffer.ticket = 0;
}

}  // namespace rlaif
