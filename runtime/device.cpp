#include "runtime/device.h"

#include <charconv>

#include "runtime/error.h"

namespace rlaif {

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

Device parse_device(std::string_view text) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  if (text.starts_with("cuda:")) {
    std::string_view digits = text.substr(5);
    int index = -1;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec == std::errc() && end == digits.data() + digits.size() && index >= 0) {
      return Device::cuda(index);
    }
  }
  throw Error("parse_device: unknown device '", text, "' (expected cpu, cuda or cuda:N)");
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
