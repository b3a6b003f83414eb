// Timing what a backend queues: a QueueMark is a point in a backend's queue of work, and the
// seconds between two marks are the time the device spent on the work queued between them.
//
// On a GPU a mark is an event recorded in the stream (cudaEventRecord): making it neither waits
// for the device nor stops the host from running ahead, so a kernel's time is charged to the call
// that queued it (not to whichever later call waits), and nothing a benchmark or the profiler
// times pays a host round trip. The host clock around synchronize() — what a backend without
// marks of its own gets (Backend::mark) — adds the launch and wake-up latency of every call,
// which is as long as the kernel itself for the ~10 µs ones (norms, activations, small GEMMs).
#pragma once

#include <memory>

namespace rlaif {

class QueueMark {
 public:
  virtual ~QueueMark() = default;
  // Seconds from `earlier` (a mark of the same backend, made before this one) to this mark;
  // waits until the device has reached this mark. Error when `earlier` comes from another kind
  // of backend.
  virtual double seconds_since(const QueueMark& earlier) const = 0;
};

}  // namespace rlaif
