#include "runtime/allocator.h"

#include <array>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

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
// The other device types' managers, by DeviceType value; registered once at start-up, before any
// tensor of the type exists.
std::array<std::atomic<DeviceMemory*>, kDeviceTypeCount> g_device_memory{};

std::string upper(const char* name) {
  std::string s(name);
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

DeviceMemory& device_memory(DeviceType type) {
  if (type == DeviceType::cpu) return g_cpu_memory;
  DeviceMemory* memory = g_device_memory.at(static_cast<size_t>(type)).load();
  if (memory == nullptr) {
    const std::string name = upper(device_type_name(type));
    throw Error("device memory: no ", name, " memory manager is registered (this build has no ",
                name, " backend, or it was not initialised)");
  }
  return *memory;
}

void register_device_memory(DeviceType type, DeviceMemory* memory) {
  RLAIF_CHECK(type != DeviceType::cpu || memory == &g_cpu_memory,
              "register_device_memory: the cpu memory manager is built in");
  RLAIF_CHECK(memory != nullptr, "register_device_memory: no memory manager given for ",
              device_type_name(type));
  if (type != DeviceType::cpu) g_device_memory.at(static_cast<size_t>(type)).store(memory);
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
