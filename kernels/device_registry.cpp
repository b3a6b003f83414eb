// The device registry (kernels/device_registry.h), backend_for and the profiling switch
// (kernels/profiling_backend.h), which replaces a device's backend in backend_for.
#include "kernels/device_registry.h"

#include <array>
#include <atomic>
#include <cctype>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/profiling_backend.h"
#ifdef RLAIF_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

namespace rlaif {
namespace {

CpuBackend& cpu_backend() {
  static CpuBackend cpu;
  return cpu;
}

DeviceTypeRegistration cpu_registration() {
  DeviceTypeRegistration r;
  r.type = DeviceType::cpu;
  r.memory = &device_memory(DeviceType::cpu);
  r.make_backend = [](int) -> Backend* { return &cpu_backend(); };
  r.communicator = [](Device) -> Communicator& { return world_communicator(); };
  r.float_dtypes = {DType::f32};
  return r;
}

struct Registry {
  std::mutex mutex;
  std::array<std::optional<DeviceTypeRegistration>, kDeviceTypeCount> types;
  // The backends made so far, by type and device index (the cpu one is cpu_backend()).
  std::array<std::map<int, std::unique_ptr<Backend>>, kDeviceTypeCount> backends;

  // The built-in device types.
  Registry() {
    add(cpu_registration());
#ifdef RLAIF_HAVE_CUDA
    add(cuda::cuda_registration());
#endif
  }
  void add(const DeviceTypeRegistration& r) {
    register_device_memory(r.type, r.memory);
    types.at(static_cast<size_t>(r.type)) = r;
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

// Installs every built-in type's memory manager at start-up, so that tensors can be made on a
// device before its first backend_for call.
[[maybe_unused]] const bool g_registered = (registry(), true);

std::string upper(const char* name) {
  std::string s(name);
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

void register_device_type(const DeviceTypeRegistration& registration) {
  RLAIF_CHECK(registration.type != DeviceType::cpu, "register_device_type: cpu is built in");
  RLAIF_CHECK(registration.memory != nullptr && registration.make_backend != nullptr,
              "register_device_type(", device_type_name(registration.type),
              "): a memory manager and a backend factory are required");
  RLAIF_CHECK(!registration.float_dtypes.empty() && registration.float_dtypes[0] == DType::f32,
              "register_device_type(", device_type_name(registration.type),
              "): float_dtypes must start with f32, which every backend accepts");
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.add(registration);
}

std::vector<DeviceTypeRegistration> registered_device_types() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<DeviceTypeRegistration> out;
  for (const auto& t : r.types) {
    if (t) out.push_back(*t);
  }
  return out;
}

DeviceTypeRegistration device_type_registration(DeviceType type) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto& t = r.types.at(static_cast<size_t>(type));
  RLAIF_CHECK(t.has_value(), "device type ", device_type_name(type),
              ": this binary was built without the ", upper(device_type_name(type)),
              " backend (`rlaif version` lists the backends built in)");
  return *t;
}

bool backend_available(DeviceType type) {
  if (type == DeviceType::cpu) return true;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.types.at(static_cast<size_t>(type)).has_value();
}

namespace {

// Profiling (kernels/profiling_backend.h). One slot per device, holding the wrapper that
// backend_for returns while profiling is on; wrappers are never destroyed, since code may still
// hold a Backend& it got while profiling was on. g_profiling counts the active slots, so
// backend_for pays one relaxed atomic load when nothing is profiled.
constexpr int kMaxProfiledIndex = 64;
constexpr size_t kProfileSlots = static_cast<size_t>(kDeviceTypeCount) * kMaxProfiledIndex;
std::atomic<int> g_profiling{0};
std::array<std::atomic<ProfilingBackend*>, kProfileSlots> g_active{};

struct Profilers {
  std::mutex mutex;  // serialises enable/disable and the creation of wrappers
  std::array<std::unique_ptr<ProfilingBackend>, kProfileSlots> wrappers;
};

// Never destroyed: a static destructor running backend_for at exit must not find a dead wrapper.
Profilers& profilers() {
  static Profilers* p = new Profilers;
  return *p;
}

bool profilable(Device device) {
  return device.index >= 0 && device.index < kMaxProfiledIndex;
}

// The slot of a device: its type's block of kMaxProfiledIndex, then its index.
size_t profile_slot(Device device) {
  return static_cast<size_t>(device.type) * kMaxProfiledIndex + static_cast<size_t>(device.index);
}

// The real backend: what backend_for returns when the device is not profiled.
Backend& plain_backend_for(Device device) {
  if (device.is_cpu()) return cpu_backend();
  const DeviceTypeRegistration type = device_type_registration(device.type);
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto& slot = r.backends.at(static_cast<size_t>(device.type))[device.index];
  if (!slot) slot.reset(type.make_backend(device.index));
  return *slot;
}

}  // namespace

Backend& backend_for(Device device) {
  if (g_profiling.load(std::memory_order_relaxed) > 0) [[unlikely]] {
    if (profilable(device)) {
      if (ProfilingBackend* p = g_active[profile_slot(device)].load(std::memory_order_acquire)) {
        return *p;
      }
    }
  }
  return plain_backend_for(device);
}

ProfilingBackend* enable_profiling(Device device) {
  RLAIF_CHECK(profilable(device), "profiling ", device, ": only ", device_type_name(device.type),
              ":0 to ", device_type_name(device.type), ":", kMaxProfiledIndex - 1,
              " can be profiled");
  const size_t slot = profile_slot(device);
  Profilers& p = profilers();
  std::lock_guard<std::mutex> lock(p.mutex);
  auto& wrapper = p.wrappers[slot];
  if (!wrapper) wrapper = std::make_unique<ProfilingBackend>(plain_backend_for(device));
  wrapper->enable();
  if (g_active[slot].exchange(wrapper.get(), std::memory_order_acq_rel) == nullptr) {
    g_profiling.fetch_add(1, std::memory_order_relaxed);
  }
  return wrapper.get();
}

void disable_profiling(Device device) {
  if (!profilable(device)) return;
  const size_t slot = profile_slot(device);
  Profilers& p = profilers();
  std::lock_guard<std::mutex> lock(p.mutex);
  if (g_active[slot].exchange(nullptr, std::memory_order_acq_rel) != nullptr) {
    g_profiling.fetch_sub(1, std::memory_order_relaxed);
  }
  if (p.wrappers[slot]) p.wrappers[slot]->disable();
}

}  // namespace rlaif
