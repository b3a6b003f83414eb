// Backend::mark (kernels/queue_mark.h) on every backend: the interval between two marks is the
// device time of the work queued between them, marking never waits for the device on a GPU, and
// the profiler built on marks charges each call its own device time. The benchmarks and
// `bench train --profile` report what these marks read, so a mark that measured the host's
// queueing time, or waited like a synchronize, would make every figure of the GPU check wrong.
//
// Timing is checked only through bounds that hold on a loaded machine: an interval nested in
// another cannot be longer than it, and work made long (≥ 20 ms) dwarfs launch latencies.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>

#include "kernels/profiling_backend.h"
#include "runtime/error.h"
#include "tests/kernels/conformance.h"

namespace rlaif::testing {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Square matrix products queued on `backend`, repeated until one call of the returned function
// keeps the device busy for at least `target_s` (measured fenced on the host clock). One product
// is timed as the fastest of five: on a loaded machine a single timing can be several times the
// product's own time, and too few products would then be queued.
class LongWork {
 public:
  LongWork(Backend& backend, DType dtype, double target_s) : backend_(backend) {
    const int64_t n = backend.device().is_cuda() ? 4096 : 192;
    a_ = Tensor::empty({n, n}, dtype, backend.device());
    out_ = Tensor::empty({n, n}, dtype, backend.device());
    backend.random_uniform(a_, 3, 0, -1.0f, 1.0f);
    products(1);  // warm-up: cuBLASLt plans, OpenBLAS threads
    backend.synchronize();
    double once = 1e30;
    for (int i = 0; i < 5; ++i) {
      const auto t0 = Clock::now();
      products(1);
      backend.synchronize();
      once = std::min(once, seconds_since(t0));
    }
    reps_ = once > 0 ? static_cast<int>(target_s / once) + 1 : 1;
  }

  void operator()() { products(reps_); }

 private:
  void products(int reps) {
    for (int i = 0; i < reps; ++i) backend_.matmul(a_, a_, out_, false, true);
  }

  Backend& backend_;
  Tensor a_, out_;
  int reps_ = 1;
};

// `work` queued between two marks on an idle device, and the host time that took.
struct MarkedWork {
  Clock::time_point t0;  // before the first mark
  std::unique_ptr<QueueMark> start, stop;
  double queued_s = 0;  // host seconds to make both marks and queue the work
};

MarkedWork mark_around(Backend& backend, LongWork& work) {
  backend.synchronize();
  MarkedWork m;
  m.t0 = Clock::now();
  m.start = backend.mark();
  work();
  m.stop = backend.mark();
  m.queued_s = seconds_since(m.t0);
  return m;
}

TEST_P(Conformance, QueueMarksTimeTheWorkBetweenThem) {
  LongWork work(backend(), float_dtype(), 0.02);
  const MarkedWork m = mark_around(backend(), work);
  const double marked = m.stop->seconds_since(*m.start);
  backend().synchronize();
  const double host = seconds_since(m.t0);
  // The marked interval lies inside the host's, and the work fills most of the host's.
  EXPECT_LE(marked, host * 1.001 + 1e-5);
  EXPECT_GE(marked, 0.5 * host) << "marks missed the work queued between them: " << marked
                                << " s of " << host << " s";
  // An empty interval is short, and reading a mark again gives the same answer.
  const std::unique_ptr<QueueMark> again = backend().mark();
  const double empty = again->seconds_since(*m.stop);
  EXPECT_GE(empty, 0.0);
  EXPECT_LT(empty, 0.25 * marked);
  EXPECT_EQ(m.stop->seconds_since(*m.start), marked);
}

TEST_P(Conformance, QueueMarksDoNotWaitForTheDevice) {
  if (!backend().device().is_cuda()) {
    GTEST_SKIP() << "primitives on " << backend().name() << " run synchronously: its marks read "
                 << "the host clock after the work";
  }
  LongWork work(backend(), float_dtype(), 0.02);
  const MarkedWork m = mark_around(backend(), work);
  const double queued = m.queued_s, device = m.stop->seconds_since(*m.start);
  EXPECT_LT(queued, 0.5 * device) << "making a mark waited for the device: " << queued
                                  << " s to queue " << device << " s of work";
}

class ForeignMark final : public QueueMark {
 public:
  double seconds_since(const QueueMark&) const override { return 0.0; }
};

TEST_P(Conformance, QueueMarksOfAnotherKindAreRejected) {
  const std::unique_ptr<QueueMark> mark = backend().mark();
  EXPECT_THROW(mark->seconds_since(ForeignMark()), Error);
}

TEST_P(Conformance, ProfilerChargesEachCallItsOwnDeviceTime) {
  // A long product, then a tiny fill: on a GPU both return at once on the host, so a profiler
  // that read the host clock without marks would charge the product nearly nothing (and the
  // fill, or nobody, its time).
  Tensor small = empty_on_backend({16}, float_dtype());
  ProfilingBackend prof(backend());
  prof.enable();
  backend().synchronize();
  const auto t0 = Clock::now();
  {
    LongWork profiled(prof, float_dtype(), 0.02);
    prof.reset();  // drop the calibration's calls
    profiled();
  }
  prof.fill(small, 1.0);
  prof.synchronize();
  const double wall = seconds_since(t0);
  const auto entries = prof.entries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name.rfind("matmul", 0), 0u) << entries[0].name;
  EXPECT_EQ(entries[1].name.rfind("fill", 0), 0u) << entries[1].name;
  EXPECT_GE(entries[0].seconds, 0.01) << "the products were charged " << entries[0].seconds << " s";
  EXPECT_LT(entries[1].seconds, 0.1 * entries[0].seconds);
  EXPECT_LE(prof.total_seconds(), wall);
  EXPECT_GE(prof.mark_floor_seconds(), 0.0);
  EXPECT_LT(prof.mark_floor_seconds(), 1e-3);
}

}  // namespace
}  // namespace rlaif::testing
