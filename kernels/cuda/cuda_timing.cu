// CudaBackend::mark: a CUDA event recorded on the legacy default stream, where every primitive
// queues its work (see cuda_backend.h), so the time between two marks is the device time of the
// work queued between them. Recording does not wait; seconds_since waits for the later event.
//
// The profiler makes two marks per primitive call, hundreds per training step, so events are
// reused: a mark returns its event to a pool of its device when destroyed. Re-recording an event
// whose earlier record is still pending is allowed (the new record replaces it, and nobody waits
// on the old one: its mark is gone).
#include <map>
#include <mutex>
#include <vector>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {
namespace {

class EventPool {
 public:
  // An event of `device` (the current device), reused or new.
  cudaEvent_t take(int device) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      std::vector<cudaEvent_t>& free = free_[device];
      if (!free.empty()) {
        const cudaEvent_t e = free.back();
        free.pop_back();
        return e;
      }
    }
    cudaEvent_t e = nullptr;
    // Default flags: timing enabled (cudaEventDisableTiming would make ElapsedTime fail).
    check_cuda(cudaEventCreate(&e), "cudaEventCreate", "a timing mark");
    return e;
  }
  void give_back(int device, cudaEvent_t e) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_[device].push_back(e);
  }

 private:
  std::mutex mutex_;
  std::map<int, std::vector<cudaEvent_t>> free_;
};

// Never destroyed: marks may outlive static destructors' order, and the driver frees the events
// at exit anyway.
EventPool& event_pool() {
  static EventPool* pool = new EventPool();
  return *pool;
}

class CudaEventMark final : public QueueMark {
 public:
  CudaEventMark() {
    check_cuda(cudaGetDevice(&device_), "cudaGetDevice", "a timing mark");
    event_ = event_pool().take(device_);
    const cudaError_t err = cudaEventRecord(event_, nullptr);
    if (err != cudaSuccess) {
      event_pool().give_back(device_, event_);
      check_cuda(err, "cudaEventRecord", "a timing mark");
    }
  }
  ~CudaEventMark() override { event_pool().give_back(device_, event_); }
  CudaEventMark(const CudaEventMark&) = delete;
  CudaEventMark& operator=(const CudaEventMark&) = delete;

  double seconds_since(const QueueMark& earlier) const override {
    const auto* e = dynamic_cast<const CudaEventMark*>(&earlier);
    RLAIF_CHECK(e != nullptr,
                "QueueMark::seconds_since: the earlier mark is not a CUDA event "
                "(marks of different backends cannot be compared)");
    check_cuda(cudaEventSynchronize(event_), "cudaEventSynchronize",
               "a timing mark (an earlier kernel failed; rerun with CUDA_LAUNCH_BLOCKING=1 to "
               "name it)");
    float ms = 0.0f;
    check_cuda(cudaEventElapsedTime(&ms, e->event_, event_), "cudaEventElapsedTime",
               "two timing marks");
    return static_cast<double>(ms) * 1e-3;
  }

 private:
  int device_ = 0;
  cudaEvent_t event_ = nullptr;
};

}  // namespace

std::unique_ptr<QueueMark> CudaBackend::mark() {
  return std::make_unique<CudaEventMark>();
}

}  // namespace rlaif::cuda
