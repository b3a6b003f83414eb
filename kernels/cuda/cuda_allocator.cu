// The caching device allocator.
//
// cudaMalloc and cudaFree synchronise the device and cost tens of microseconds, and a training
// step allocates and frees thousands of activations and gradients of the same few sizes. So freed
// blocks are kept in per-size free lists and handed out again: sizes are rounded up (to 512 bytes
// below 1 MiB, else to 2 MiB steps) so that blocks of nearly equal sizes share a list. When
// cudaMalloc fails, every cached block is released and the allocation retried once before the
// out-of-memory Error, which names the request and what is in use and cached.
//
// Memory is reused only after the host released the tensor; since every kernel runs on the one
// legacy default stream, a block reused by a later kernel is ordered after the kernels that used
// it. The one other stream, NCCL's (nccl_communicator.h), keeps that true only if a tensor it
// reads or writes is released after the default stream was made to wait for the collective
// (the plain collectives do so before they return; start_* leave it to wait(ticket)).
#include <map>
#include <mutex>
#include <vector>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {
namespace {

size_t round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  constexpr size_t kSmall = 512, kLarge = 2u << 20, kSmallLimit = 1u << 20;
  if (bytes < kSmallLimit) return (bytes + kSmall - 1) / kSmall * kSmall;
  return (bytes + kLarge - 1) / kLarge * kLarge;
}

class CachingCudaMemory final : public DeviceMemory {
 public:
  void* allocate(size_t bytes, Device device) override {
    const size_t size = round_size(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    auto& free_list = free_[{device.index, size}];
    void* ptr = nullptr;
    if (!free_list.empty()) {
      ptr = free_list.back();
      free_list.pop_back();
      cached_ -= size;
    } else {
      ptr = fresh(size, device, bytes);
    }
    in_use_ += size;
    if (in_use_ > peak_) peak_ = in_use_;
    return ptr;
  }

  void deallocate(void* ptr, size_t bytes, Device device) override {
    if (ptr == nullptr) return;
    const size_t size = round_size(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    free_[{device.index, size}].push_back(ptr);
    in_use_ -= size;
    cached_ += size;
  }

  void memset_zero(void* ptr, size_t bytes, Device device) override {
    select(device);
    check_cuda(cudaMemsetAsync(ptr, 0, bytes, 0), "cudaMemsetAsync",
               std::to_string(bytes) + " bytes");
  }
  void copy_to_host(void* host_dst, const void* src, size_t bytes, Device device) override {
    select(device);
    check_cuda(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to host",
               std::to_string(bytes) + " bytes from " + device.str());
  }
  void copy_from_host(void* dst, const void* host_src, size_t bytes, Device device) override {
    select(device);
    check_cuda(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy from host",
               std::to_string(bytes) + " bytes to " + device.str());
  }
  void copy_within(void* dst, const void* src, size_t bytes, Device device) override {
    select(device);
    check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0),
               "cudaMemcpy on device", std::to_string(bytes) + " bytes on " + device.str());
  }

  size_t in_use() {
    std::lock_guard<std::mutex> lock(mutex_);
    return in_use_;
  }
  size_t peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    return peak_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    peak_ = in_use_;
  }
  size_t cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

 private:
  static void select(Device device) {
    int current = -1;
    if (cudaGetDevice(&current) == cudaSuccess && current == device.index) return;
    cudaGetLastError();
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw Error("cuda allocator: no usable CUDA device for ", device.str(), " (",
                  cudaGetErrorString(err), ")");
    }
    RLAIF_CHECK(device.index >= 0 && device.index < count, "cuda allocator: device ", device.str(),
                " does not exist (", count, " CUDA device", count == 1 ? "" : "s", " present)");
    check_cuda(cudaSetDevice(device.index), "cudaSetDevice", device.str());
  }

  // Called with the mutex held.
  void* fresh(size_t size, Device device, size_t requested) {
    select(device);
    void* ptr = nullptr;
    cudaError_t err = cudaMalloc(&ptr, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release_cached();
      err = cudaMalloc(&ptr, size);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw Error("cuda allocator: out of memory on ", device.str(), " allocating ", requested,
                  " bytes (", in_use_, " bytes in use by tensors; ", cudaGetErrorString(err),
                  "). Lower --batch or --seq, or use --recompute");
    }
    return ptr;
  }

  void release_cached() {
    cudaDeviceSynchronize();
    for (auto& [key, list] : free_) {
      for (void* p : list) cudaFree(p);
      list.clear();
    }
    cached_ = 0;
  }

  std::mutex mutex_;
  std::map<std::pair<int, size_t>, std::vector<void*>> free_;
  size_t in_use_ = 0, peak_ = 0, cached_ = 0;
};

CachingCudaMemory& memory() {
  // Never destroyed: tensors held by static objects may be freed after main returns, and the CUDA
  // runtime tears itself down at exit anyway.
  static CachingCudaMemory* m = new CachingCudaMemory();
  return *m;
}

}  // namespace

DeviceMemory* cuda_device_memory() {
  return &memory();
}
size_t cuda_bytes_in_use() {
  return memory().in_use();
}
size_t cuda_peak_bytes() {
  return memory().peak();
}
void cuda_reset_peak_bytes() {
  memory().reset_peak();
}
size_t cuda_bytes_cached() {
  return memory().cached();
}

}  // namespace rlaif::cuda
