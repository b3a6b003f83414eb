// Where a tensor's memory lives: the host (cpu) or one device of an accelerator type (cuda:N).
#pragma once

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace rlaif {

// The device types rlaif knows. A port to a new accelerator adds its value here and its name to
// device_type_name (runtime/device.cpp); its memory, backend and communicator are registered at
// start-up under that type (kernels/device_registry.h, docs/PORTING.md).
enum class DeviceType : uint8_t { cpu, cuda };
inline constexpr int kDeviceTypeCount = 2;

// "cpu", "cuda": the name a device type is parsed from and printed as.
const char* device_type_name(DeviceType type);

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  bool operator==(const Device&) const = default;
  // "cpu", or the type's name and index ("cuda:N").
  std::string str() const;
};

// Parses "cpu", or a device type's name ("cuda" = cuda:0) or name and index ("cuda:N"); throws
// Error naming the text otherwise.
Device parse_device(std::string_view text);
std::ostream& operator<<(std::ostream& os, const Device& device);

// The indices of `devices` grouped by device: groups in the order their device first appears,
// indices increasing within a group. How a list of tensors is split into one batched call per
// device (one adamw_steps, one squared_norms).
std::vector<std::vector<size_t>> group_by_device(const std::vector<Device>& devices);

}  // namespace rlaif
