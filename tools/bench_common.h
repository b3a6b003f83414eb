// What the `rlaif bench` commands share: the device under test (its name and spec-sheet peak),
// timing of queued work by Backend::mark (CUDA events on a GPU, so tools/ stays free of CUDA
// headers and a 10 µs kernel is not timed as its launch latency), peak memory, an aligned text
// table and the JSON file each benchmark can write for tools/gpu_check.sh.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "kernels/backend.h"
#include "runtime/device.h"
#include "runtime/dtype.h"

namespace rlaif::cli {

struct BenchDevice {
  Device device;
  std::string name;              // "NVIDIA H100 80GB HBM3", or the CPU's model name
  double peak_bf16_flops = 0.0;  // dense bf16 tensor-core FLOP/s of the spec sheet; 0 = unknown
};

// Parses --device ("cpu", "cuda", "cuda:N"): UsageError for a malformed value, Error when the
// CUDA backend is not compiled in or the device cannot be used.
BenchDevice bench_device(const std::string& text);

// Dense (not 2:4 sparse) bf16 FLOP/s of a GPU from its name as CUDA reports it; 0 when the name
// is not in the table (MFU is then reported as n/a rather than guessed).
double peak_bf16_flops(const std::string& gpu_name);

// --dtype of the model benchmarks: "f32", or "bf16" on a GPU (UsageError naming the flag
// otherwise: the CPU backend computes in f32 only).
DType bench_dtype(const std::string& text, const BenchDevice& device);

// A comma-separated list of integers in [1, max] ("1,8,64"); UsageError naming --flag otherwise.
std::vector<int64_t> positive_int_list(const std::string& flag, const std::string& text,
                                       int64_t max = INT64_MAX);

double median(std::vector<double> samples);

// Runs fn `warmup` times untimed, then `reps` times back to back, each timed between two marks
// in the backend's queue (kernels/queue_mark.h: the device's time, not the host's); returns the
// seconds of the timed runs. `backlog`, when given, is queued once before the timed runs: device
// work long enough that the host has queued every timed run before the device reaches the
// first, so that no interval holds the host's launch latency (useful only on an asynchronous
// backend, a GPU).
std::vector<double> time_runs(Backend& backend, const std::function<void()>& fn, int warmup,
                              int reps, const std::function<void()>& backlog = nullptr);

// Peak bytes held by tensors on the device's type since the process started, or since the last
// reset_peak_memory.
size_t peak_memory_bytes(Device device);
// Restarts that peak from the bytes held now, so that a benchmark can measure one phase.
void reset_peak_memory(Device device);
// Bytes held by tensors on the device's type now.
size_t memory_in_use_bytes(Device device);

// "n/a" for a non-finite or non-positive value, else printf("%.*f").
std::string fixed(double value, int decimals);
// "123.4 MiB".
std::string human_bytes(double bytes);

// Rows of cells printed as aligned columns: the first left-aligned, the others right-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(FILE* out = stdout) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// A JSON object built field by field, in order. Numbers that are not finite (an unknown MFU)
// are written as null, which JSON readers take as "no value".
class JsonObject {
 public:
  JsonObject& str(const std::string& key, const std::string& value);
  JsonObject& num(const std::string& key, double value);
  JsonObject& integer(const std::string& key, long long value);
  JsonObject& object(const std::string& key, const JsonObject& value);
  JsonObject& array(const std::string& key, const std::vector<JsonObject>& values);
  // Compact one-line text, e.g. {"a": 1, "b": "x"}.
  std::string text() const;

 private:
  std::vector<std::pair<std::string, std::string>> fields_;  // key, already-encoded value
};

// Writes the object (one line and a newline) to `path`; Error naming the path when it cannot.
void write_json_file(const std::string& path, const JsonObject& json);

}  // namespace rlaif::cli
