// Device memory: every device type has one DeviceMemory that allocates, frees, zeroes and copies
// its bytes. The CPU one lives here (64-byte aligned, so SIMD loads never straddle a cache line);
// every other device type registers its own at start-up (kernels/device_registry.cpp: the CUDA
// backend's caching allocator). This is the memory half of a port (docs/PORTING.md).
#pragma once

#include <cstddef>

#include "runtime/device.h"

namespace rlaif {

// Every method is called with the device the bytes live on (its index selects the device of a
// multi-device type). Errors are thrown as rlaif::Error, naming the device and the byte count.
class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  // Bytes for a tensor, suitably aligned for any dtype; a valid, unique pointer for 0 bytes.
  virtual void* allocate(size_t bytes, Device device) = 0;
  // Returns allocate's pointer with the byte count it was allocated with.
  virtual void deallocate(void* ptr, size_t bytes, Device device) = 0;
  virtual void memset_zero(void* ptr, size_t bytes, Device device) = 0;
  // Copies between this device type and the host (one of the two pointers is host memory) or
  // within the device type.
  virtual void copy_to_host(void* host_dst, const void* src, size_t bytes, Device device) = 0;
  virtual void copy_from_host(void* dst, const void* host_src, size_t bytes, Device device) = 0;
  virtual void copy_within(void* dst, const void* src, size_t bytes, Device device) = 0;
};

constexpr size_t kCpuAlignment = 64;

// The memory manager for `type`; throws Error when none is registered (e.g. cuda in a CPU-only
// build, or in a binary that links the runtime alone).
DeviceMemory& device_memory(DeviceType type);
// Installs the memory manager of any device type (kernels/device_registry.cpp does, for every
// registered type). The cpu one is built in: registering another for cpu is an Error.
void register_device_memory(DeviceType type, DeviceMemory* memory);

// Bytes currently held by CPU tensors, and the peak since start; for tests and benchmarks.
size_t cpu_bytes_in_use();
size_t cpu_peak_bytes();
// Restarts the peak from the bytes in use now, so a test can measure the peak of one phase.
void reset_cpu_peak_bytes();

}  // namespace rlaif
