#include "runtime/allocator.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "runtime/error.h"

namespace rlaif {
namespace {

std::atomic<size_t> g_cpu_in_use{0};
std::atomic<size_t> g_cpu_peak{0};

class CpuMemory final : public DeviceMemory {
 public:
  void* allocate(size_t bytes, Device) override {
    // aligned_alloc needs a size that is a multiple of the alignment; zero-byte tensors still get
    // a valid unique pointer.
    size_t rounded = ((bytes + kCpuAlignment - 1) / kCpuAlignment) * kCpuAlignment;
    if (rounded == 0) rounded = kCpuAlignment;
    void* ptr = std::aligned_alloc(kCpuAlignment, rounded);
    if (ptr == nullptr) throw Error("cpu allocator: out of memory allocating ", bytes, " bytes");
    size_t now = g_cpu_in_use.fetch_add(bytes) + bytes;
    size_t peak = g_cpu_peak.load();
    while (now > peak && !g_cpu_peak.compare_exchange_weak(peak, now)) {
    }
    return ptr;
  }
  void deallocate(void* ptr, size_t bytes, Device) override {
    std::free(ptr);
    g_cpu_in_use.fetch_sub(bytes);
  }
  void memset_zero(void* ptr, size_t bytes, Device) override { std::memset(ptr, 0, bytes); }
  void copy_to_host(void* dst, const void* src, size_t bytes, Device) override {
    std::memmove(dst, src, bytes);
  }
  void copy_from_host(void* dst, const void* src, size_t bytes, Device) override {
    std::memmove(dst, src, bytes);
  }
  void copy_within(void* dst, const void* src, size_t bytes, Device) override {
    std::memmove(dst, src, bytes);
  }
};

CpuMemory g_cpu_memory;
DeviceMemory* g_cuda_memory = nullptr;

}  // namespace

DeviceMemory& device_memory(DeviceType type) {
  if (type == DeviceType::cpu) return g_cpu_memory;
  if (g_cuda_memory == nullptr) {
    throw Error(
        "device memory: no CUDA memory manager is registered (this build has no CUDA backend, or "
        "it was not initialised)");
  }
  return *g_cuda_memory;
}

void register_device_memory(DeviceType type, DeviceMemory* memory) {
  RLAIF_CHECK(type == DeviceType::cuda, "register_device_memory: the cpu memory manager is fixed");
  g_cuda_memory = memory;
}

size_t cpu_bytes_in_use() {
  return g_cpu_in_use.load();
}
size_t cpu_peak_bytes() {
  return g_cpu_peak.load();
}
void reset_cpu_peak_bytes() {
  g_cpu_peak.store(g_cpu_in_use.load());
}

}  // namespace rlaif
