// CudaBackend::mark: a CUDA event recorded on the legacy default stream, where every primitive
// queues its work (see cuda_backend.h), so the time between two marks is the device time of the
// work queued between them. Recording does not wait; seconds_since waits for the later event.
#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {
namespace {

class CudaEventMark final : public QueueMark {
 public:
  CudaEventMark() {
    // Default flags: timing enabled (cudaEventDisableTiming would make ElapsedTime fail).
    check_cuda(cudaEventCreate(&event_), "cudaEventCreate", "a timing mark");
    const cudaError_t err = cudaEventRecord(event_, nullptr);
    if (err != cudaSuccess) {
      cudaEventDestroy(event_);
      check_cuda(err, "cudaEventRecord", "a timing mark");
    }
  }
  // An event still pending may be destroyed: CUDA releases it once the stream reaches it.
  ~CudaEventMark() override { cudaEventDestroy(event_); }
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
  cudaEvent_t event_ = nullptr;
};

}  // namespace

std::unique_ptr<QueueMark> CudaBackend::mark() {
  return std::make_unique<CudaEventMark>();
}

}  // namespace rlaif::cuda
