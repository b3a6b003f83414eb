#include "runtime/device.h"

#include <charconv>

#include "runtime/error.h"

namespace rlaif {

const char* device_type_name(DeviceType type) {
  switch (type) {
    case DeviceType::cpu:
      return "cpu";
    case DeviceType::cuda:
      return "cuda";
  }
  return "?";
}

std::string Device::str() const {
  if (is_cpu()) return "cpu";
  std::string s = device_type_name(type);
  s += ':';
  s += std::to_string(index);
  return s;
}

Device parse_device(std::string_view text) {
  if (text == "cpu") return Device::cpu();
  std::string expected = "cpu";
  for (int t = 1; t < kDeviceTypeCount; ++t) {
    const auto type = static_cast<DeviceType>(t);
    const std::string_view name = device_type_name(type);
    if (text == name) return Device{type, 0};
    if (text.size() > name.size() + 1 && text.starts_with(name) && text[name.size()] == ':') {
      std::string_view digits = text.substr(name.size() + 1);
      int index = -1;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
      if (ec == std::errc() && end == digits.data() + digits.size() && index >= 0) {
        return Device{type, index};
      }
    }
    expected += std::string(", ") + device_type_name(type);
    expected += (t + 1 < kDeviceTypeCount ? ", " : " or ") + std::string(name) + ":N";
  }
  throw Error("parse_device: unknown device '", text, "' (expected ", expected, ")");
}

std::ostream& operator<<(std::ostream& os, const Device& device) {
  return os << device.str();
}

std::vector<std::vector<size_t>> group_by_device(const std::vector<Device>& devices) {
  std::vector<Device> seen;
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < devices.size(); ++i) {
    size_t g = 0;
    while (g < seen.size() && seen[g] != devices[i]) ++g;
    if (g == seen.size()) {
      seen.push_back(devices[i]);
      groups.emplace_back();
    }
    groups[g].push_back(i);
  }
  return groups;
}

}  // namespace rlaif
