#include "tools/bench_common.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/cpu_info.h"
#include "runtime/allocator.h"
#include "runtime/error.h"
#include "tools/cli_flags.h"

#ifdef RLAIF_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_info.h"
#endif

namespace rlaif::cli {
namespace {

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    size_t colon = line.find(':');
    if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
  }
  return "unknown CPU";
}

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

double peak_bf16_flops(const std::string& gpu_name) {
  // Most specific names first: "H100 PCIe" and "H100 NVL" also contain "H100". NVIDIA's spec
  // sheets quote 2:4-sparse rates; these are the dense halves.
  static const std::pair<const char*, double> kTable[] = {
      {"H100 PCIe", 756e12}, {"H100 NVL", 835e12}, {"GH200", 989e12},
      {"H200", 989e12},      {"H100", 989e12},     {"A100", 312e12},
  };
  for (const auto& [name, flops] : kTable) {
    if (gpu_name.find(name) != std::string::npos) return flops;
  }
  return 0.0;
}

BenchDevice bench_device(const std::string& text) {
  BenchDevice d;
  try {
    d.device = parse_device(text);
  } catch (const Error& e) {
    throw UsageError(std::string("--device: ") + e.what());
  }
  if (d.device.is_cpu()) {
    d.name = cpu_model_name() + " (" + std::to_string(cpu::thread_count()) + " threads)";
    return d;
  }
  RLAIF_CHECK(backend_available(DeviceType::cuda), "--device ", text,
              ": this rlaif was built without the CUDA backend (configure with the CUDA Toolkit)");
  backend_for(d.device);  // throws when the device cannot be used
#ifdef RLAIF_HAVE_CUDA
  cuda::CudaInfo info = cuda::query_cuda();
  if (d.device.index >= 0 && static_cast<size_t>(d.device.index) < info.devices.size()) {
    // "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)": the name is what precedes the details.
    const std::string& full = info.devices[static_cast<size_t>(d.device.index)];
    d.name = full.substr(0, full.find(" ("));
  }
#endif
  if (d.name.empty()) d.name = d.device.str();
  d.peak_bf16_flops = peak_bf16_flops(d.name);
  return d;
}

DType bench_dtype(const std::string& text, const BenchDevice& device) {
  if (text == "f32") return DType::f32;
  if (text != "bf16") throw UsageError("--dtype must be f32 or bf16, not '" + text + "'");
  if (device.device.is_cpu()) {
    throw UsageError("--dtype bf16 needs --device cuda: the CPU backend computes in f32 only");
  }
  return DType::bf16;
}

std::vector<int64_t> positive_int_list(const std::string& flag, const std::string& text,
                                       int64_t max) {
  std::vector<int64_t> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? comma : comma - start);
    size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || value <= 0 || value > max) {
      throw UsageError("--" + flag + " must be a comma-separated list of integers in [1, " +
                       std::to_string(max) + "], not '" + text + "'");
    }
    out.push_back(value);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

double median(std::vector<double> samples) {
  if (samples.empty()) return 0.0;
  std::sort(samples.begin(), samples.end());
  size_t n = samples.size();
  return n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
}

std::vector<double> time_runs(Backend& backend, const std::function<void()>& fn, int warmup,
                              int reps, const std::function<void()>& backlog) {
  for (int i = 0; i < warmup; ++i) fn();
  if (backlog) backlog();
  std::vector<std::pair<std::unique_ptr<QueueMark>, std::unique_ptr<QueueMark>>> marks;
  for (int i = 0; i < reps; ++i) {
    std::unique_ptr<QueueMark> start = backend.mark();
    fn();
    marks.emplace_back(std::move(start), backend.mark());
  }
  std::vector<double> seconds;
  for (const auto& [start, stop] : marks) seconds.push_back(stop->seconds_since(*start));
  return seconds;
}

size_t peak_memory_bytes(Device device) {
#ifdef RLAIF_HAVE_CUDA
  if (device.is_cuda()) return cuda::cuda_peak_bytes();
#endif
  (void)device;
  return cpu_peak_bytes();
}

size_t memory_in_use_bytes(Device device) {
#ifdef RLAIF_HAVE_CUDA
  if (device.is_cuda()) return cuda::cuda_bytes_in_use();
#endif
  (void)device;
  return cpu_bytes_in_use();
}

void reset_peak_memory(Device device) {
#ifdef RLAIF_HAVE_CUDA
  if (device.is_cuda()) {
    cuda::cuda_reset_peak_bytes();
    return;
  }
#endif
  (void)device;
  reset_cpu_peak_bytes();
}

std::string fixed(double value, int decimals) {
  if (!std::isfinite(value) || value <= 0) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

void Table::print(FILE* out) const {
  std::vector<size_t> width;
  for (const auto& row : rows_) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (const auto& row : rows_) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      std::string pad(width[c] - row[c].size(), ' ');
      if (c == 0) {
        line += row[c] + pad;
      } else {
        line += "  " + pad + row[c];
      }
    }
    line.erase(line.find_last_not_of(' ') + 1);  // an empty last cell leaves no trailing blanks
    std::fprintf(out, "%s\n", line.c_str());
  }
}

JsonObject& JsonObject::str(const std::string& key, const std::string& value) {
  fields_.emplace_back(key, json_quote(value));
  return *this;
}

JsonObject& JsonObject::num(const std::string& key, double value) {
  if (!std::isfinite(value)) {
    fields_.emplace_back(key, "null");
  } else {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", value);
    fields_.emplace_back(key, buf);
  }
  return *this;
}

JsonObject& JsonObject::integer(const std::string& key, long long value) {
  fields_.emplace_back(key, std::to_string(value));
  return *this;
}

JsonObject& JsonObject::object(const std::string& key, const JsonObject& value) {
  fields_.emplace_back(key, value.text());
  return *this;
}

JsonObject& JsonObject::array(const std::string& key, const std::vector<JsonObject>& values) {
  std::string text = "[";
  for (size_t i = 0; i < values.size(); ++i) text += (i ? ", " : "") + values[i].text();
  fields_.emplace_back(key, text + "]");
  return *this;
}

std::string JsonObject::text() const {
  std::string out = "{";
  for (size_t i = 0; i < fields_.size(); ++i) {
    out += (i ? ", " : "") + json_quote(fields_[i].first) + ": " + fields_[i].second;
  }
  return out + "}";
}

void write_json_file(const std::string& path, const JsonObject& json) {
  std::ofstream out(path);
  RLAIF_CHECK(out.good(), "cannot write ", path);
  out << json.text() << "\n";
  out.close();
  RLAIF_CHECK(out.good(), "cannot write ", path);
}

}  // namespace rlaif::cli
