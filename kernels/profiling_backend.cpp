#include "kernels/profiling_backend.h"

#include <algorithm>
#include <utility>

namespace rlaif {

ProfilingBackend::ProfilingBackend(Backend& inner) : inner_(inner) {}

void ProfilingBackend::enable() {
  // The floor: an empty interval between two marks, timed as a primitive is (median of a few).
  inner_.synchronize();
  std::vector<double> s;
  for (int i = 0; i < 9; ++i) {
    const std::unique_ptr<QueueMark> start = inner_.mark();
    const std::unique_ptr<QueueMark> stop = inner_.mark();
    s.push_back(stop->seconds_since(*start));
  }
  std::sort(s.begin(), s.end());
  mark_floor_s_ = s[s.size() / 2];
  enabled_.store(true, std::memory_order_relaxed);
}

void ProfilingBackend::disable() {
  enabled_.store(false, std::memory_order_relaxed);
}

void ProfilingBackend::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  pending_.clear();
  stats_.clear();
}

void ProfilingBackend::resolve_pending() const {
  for (PendingCall& p : pending_) {
    const double seconds = p.stop->seconds_since(*p.start);
    ProfileEntry& e = stats_[p.label];
    if (e.calls == 0) e.name = p.label;
    e.calls += 1;
    e.seconds += seconds;
    e.flops += p.flops;
    e.bytes += p.bytes;
  }
  pending_.clear();
}

std::vector<ProfileEntry> ProfilingBackend::entries() const {
  std::vector<ProfileEntry> out;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    resolve_pending();
    out.reserve(stats_.size());
    for (const auto& [label, e] : stats_) out.push_back(e);
  }
  // stats_ is ordered by name, and stable_sort keeps that order among equal times.
  std::stable_sort(out.begin(), out.end(), [](const ProfileEntry& a, const ProfileEntry& b) {
    return a.seconds > b.seconds;
  });
  return out;
}

double ProfilingBackend::total_seconds() const {
  std::lock_guard<std::mutex> lock(mutex_);
  resolve_pending();
  double total = 0.0;
  for (const auto& [label, e] : stats_) total += e.seconds;
  return total;
}

void ProfilingBackend::record(ProfileLabel label, std::unique_ptr<QueueMark> start,
                              std::unique_ptr<QueueMark> stop) {
  std::lock_guard<std::mutex> lock(mutex_);
  pending_.push_back(
      {std::move(label.label), label.flops, label.bytes, std::move(start), std::move(stop)});
  if (pending_.size() >= kMaxPending) resolve_pending();
}

}  // namespace rlaif
