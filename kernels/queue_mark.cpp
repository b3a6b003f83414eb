// Backend::mark's default: the host clock, read after the queue has drained.
#include "kernels/queue_mark.h"

#include <chrono>

#include "kernels/backend.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

class HostClockMark final : public QueueMark {
 public:
  HostClockMark() : time_(std::chrono::steady_clock::now()) {}

  double seconds_since(const QueueMark& earlier) const override {
    const auto* e = dynamic_cast<const HostClockMark*>(&earlier);
    RLAIF_CHECK(e != nullptr,
                "QueueMark::seconds_since: the earlier mark comes from another "
                "kind of backend than this host-clock mark");
    return std::chrono::duration<double>(time_ - e->time_).count();
  }

 private:
  std::chrono::steady_clock::time_point time_;
};

}  // namespace

std::unique_ptr<QueueMark> Backend::mark() {
  // After synchronize() every call queued so far has finished, so the clock reads the end of
  // the work before the mark (and, at the next mark, of the work between the two).
  synchronize();
  return std::make_unique<HostClockMark>();
}

}  // namespace rlaif
