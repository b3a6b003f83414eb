// A Backend that wraps another and times every primitive, so a training step's time can be
// broken down by primitive and shape (`rlaif bench train --profile`).
//
// Each call is timed between two marks in the inner backend's queue (kernels/queue_mark.h): on a
// GPU, CUDA events around the work the call queues, read back later, so the device time of a
// kernel is charged to the primitive that queued it and the host still runs ahead of the device
// as in an unprofiled step; on the CPU, the host clock. Work queued outside any primitive
// (uploads, copies to the host) is charged to nobody. When the device waits for the host (the
// queue ran dry), a call's interval also holds that wait; the time between calls — the wall
// time minus the sum — is then idle device time, which tells a host-bound step from a
// device-bound one.
//
// Calls are aggregated under a label: the primitive's name plus a short shape/dtype signature
// ("matmul 8192x3072x768 bf16 nt", "attention B8 T1024 H12 Dh64 bf16"), with the call count,
// total seconds, and cheap FLOP and byte estimates (FLOPs for matmul and attention only; bytes
// as the sum of the tensors' sizes, each counted once). kernels/profile_label.h makes the labels
// from the arguments, so the wrapper itself is generated from backend.h's list of primitives.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/profile_label.h"

namespace rlaif {

// The aggregate of the calls under one label.
struct ProfileEntry {
  std::string name;    // "matmul 8192x3072x768 bf16 nt"
  int64_t calls = 0;   // number of calls
  double seconds = 0;  // total host-clock seconds between the fencing synchronizes
  double flops = 0;    // total FLOPs (0 where not estimated)
  double bytes = 0;    // total bytes of the tensors passed (0 where not estimated)
};

class ProfilingBackend final : public Backend {
 public:
  // inner must outlive this wrapper (backends live until exit).
  explicit ProfilingBackend(Backend& inner);

  Backend& inner() const { return inner_; }
  // Starts timing calls (a wrapper starts disabled and then only forwards); also measures an
  // empty interval between two marks, the floor under every call's time.
  void enable();
  // Stops timing; calls are still forwarded. The figures gathered so far are kept.
  void disable();
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  // Forgets every figure gathered so far.
  void reset();

  // The aggregates, largest total time first (ties by name, so the order is stable).
  std::vector<ProfileEntry> entries() const;
  // Sum of the seconds of every entry.
  double total_seconds() const;
  // Seconds of one empty mark → mark interval, measured at the last enable().
  double mark_floor_seconds() const { return mark_floor_s_; }

  // Prints the `top` largest entries (all when top <= 0) as a table: calls, total ms, % of the
  // total, µs per call, TFLOP/s and GB/s where estimated. With wall_seconds > 0 (the wall time of
  // the profiled region) percentages are of that instead, and a last row shows the time outside
  // any primitive (wall minus the sum: host, autograd and allocation overhead).
  void report(std::ostream& os, int top = 30, double wall_seconds = 0.0) const;

  Device device() const override { return inner_.device(); }
  std::string name() const override { return inner_.name(); }
  void synchronize() override { inner_.synchronize(); }
  std::unique_ptr<QueueMark> mark() override { return inner_.mark(); }

  // Every primitive of kernels/backend.h, required and optional: forwarded to the inner
  // backend, and timed while enabled.
#define RLAIF_PROFILE_PRIMITIVE(name, params, args)                    \
  void name params override {                                          \
    timed(#name, #args, profile_args args, [&] { inner_.name args; }); \
  }
  RLAIF_BACKEND_PRIMITIVES(RLAIF_PROFILE_PRIMITIVE, RLAIF_PROFILE_PRIMITIVE)
#undef RLAIF_PROFILE_PRIMITIVE

 private:
  // A timed call whose marks have not been read yet (reading waits for the device).
  struct PendingCall {
    std::string label;
    double flops = 0, bytes = 0;
    std::unique_ptr<QueueMark> start, stop;
  };
  // Calls held before their marks are read: enough for a few training steps of a large model
  // without a mid-step wait, few enough to bound the events held.
  static constexpr size_t kMaxPending = 16384;

  // Runs `call`; when enabled, marks the queue before and after it and adds its time (once the
  // marks are read) to the aggregate of the call's label (profile_label.h: made only then, and
  // only after `call` returned, so a disabled wrapper formats nothing and the shapes have been
  // checked). `names` is the primitive's argument list as written in backend.h, "(out, value)".
  template <typename Call>
  void timed(const char* primitive, const char* names, std::span<const ProfileArg> args,
             Call&& call) {
    if (!enabled()) {
      call();
      return;
    }
    std::unique_ptr<QueueMark> start = inner_.mark();
    call();
    std::unique_ptr<QueueMark> stop = inner_.mark();
    record(profile_label(primitive, names, args), std::move(start), std::move(stop));
  }
  // Queues a timed call for resolve_pending.
  void record(ProfileLabel label, std::unique_ptr<QueueMark> start,
              std::unique_ptr<QueueMark> stop);
  // Reads the pending calls' marks into stats_. Needs mutex_.
  void resolve_pending() const;

  Backend& inner_;
  std::atomic<bool> enabled_{false};
  double mark_floor_s_ = 0.0;
  // Guards pending_ and stats_: primitives may be called from several threads.
  mutable std::mutex mutex_;
  mutable std::vector<PendingCall> pending_;
  mutable std::map<std::string, ProfileEntry> stats_;
};

// Switches profiling on for a device: from now on backend_for(device) returns this device's
// ProfilingBackend (created on first use, wrapping the real backend, and never destroyed) with
// timing enabled. Figures from earlier profiling of the device are kept; call reset() to drop
// them. Throws what backend_for throws when the device cannot be used.
ProfilingBackend* enable_profiling(Device device);
// Switches it off: backend_for(device) returns the real backend again, and the wrapper (which
// code may still hold a reference to) stops timing. Its figures stay readable. A no-op when
// profiling was not on.
void disable_profiling(Device device);

}  // namespace rlaif
