// Fuzzes the reading of a sharded model directory (io/safetensors_checkpoint.h,
// SafetensorsCheckpoint::open_dir): model.safetensors.index.json and up to two shards, packed in
// one input as
//   INDEX.JSON, fuzz::kPartSeparator, SHARD 1, fuzz::kPartSeparator, SHARD 2
// The shards are written as model-00001-of-00002.safetensors and
// model-00002-of-00002.safetensors; the index's weight_map names whatever files it names. Every
// tensor of a checkpoint that opens is read, and checked against the index and its shard.
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_set>

#include "io/safetensors_checkpoint.h"
#include "runtime/error.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

constexpr const char* kShardNames[] = {"model-00001-of-00002.safetensors",
                                       "model-00002-of-00002.safetensors"};

// The checks on a checkpoint that opened; any violation traps.
void check(const rlaif::SafetensorsCheckpoint& ckpt, const std::string& dir,
           std::string_view index) {
  using namespace rlaif;
  namespace fs = std::filesystem;
  // JSON text holds no raw NUL byte (inside a string it must be escaped), so such an index is
  // not JSON and must not open.
  if (index.find('\0') != std::string_view::npos) __builtin_trap();
  if (ckpt.names().empty() || ckpt.files().empty()) __builtin_trap();
  // Every shard is a regular file directly inside the directory, opened once, under a path with
  // no NUL byte (opening such a path reads the file named by the part before the NUL).
  std::unordered_set<std::string> paths;
  size_t shard_tensors = 0;
  for (const SafetensorsFile& file : ckpt.files()) {
    const std::string& path = file.path();
    if (path.find('\0') != std::string::npos) __builtin_trap();
    if (fs::path(path).parent_path() != fs::path(dir)) __builtin_trap();
    if (!fs::is_regular_file(path)) __builtin_trap();
    if (!paths.insert(fs::weakly_canonical(path).string()).second) __builtin_trap();
    shard_tensors += file.names().size();
  }
  // Each tensor is listed once, and every tensor of every shard is listed.
  std::unordered_set<std::string> names(ckpt.names().begin(), ckpt.names().end());
  if (names.size() != ckpt.names().size()) __builtin_trap();
  if (shard_tensors != names.size()) __builtin_trap();

  uint64_t checksum = ckpt.metadata().size() + ckpt.index_metadata().size();
  for (const std::string& name : ckpt.names()) {
    if (!ckpt.contains(name)) __builtin_trap();
    // The file the name maps to is one of the shards, and holds it.
    const SafetensorsFile* shard = nullptr;
    for (const SafetensorsFile& file : ckpt.files()) {
      if (file.path() == ckpt.file_of(name)) shard = &file;
    }
    if (shard == nullptr || !shard->contains(name)) __builtin_trap();
    const TensorInfo& info = ckpt.info(name);
    if (&info != &shard->info(name)) __builtin_trap();
    if (info.data_begin > info.data_end) __builtin_trap();
    uint64_t expected = dtype_size(info.dtype);
    for (int64_t d : info.shape) {
      if (d < 0) __builtin_trap();
      if (__builtin_mul_overflow(expected, static_cast<uint64_t>(d), &expected)) __builtin_trap();
    }
    if (info.nbytes() != expected) __builtin_trap();
    Tensor t = ckpt.tensor(name);
    if (t.shape() != info.shape || t.dtype() != info.dtype || t.nbytes() != info.nbytes())
      __builtin_trap();
    // Reading every byte lets ASan check that the tensor lies inside its shard's mapping.
    const auto* bytes = static_cast<const uint8_t*>(t.raw_data());
    for (uint64_t i = 0; i < t.nbytes(); ++i) checksum += bytes[i];
  }
  fuzz::consume(checksum);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rlaif;
  const fuzz::ScratchDir& dir = fuzz::scratch();
  dir.clear();
  std::vector<std::string_view> parts =
      fuzz::split_parts(fuzz::as_text(data, size), fuzz::kPartSeparator, 3);
  dir.write(kSafetensorsIndexName, parts[0]);
  for (size_t i = 1; i < parts.size(); ++i) dir.write(kShardNames[i - 1], parts[i]);
  try {
    SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open_dir(dir.str());
    check(ckpt, dir.str(), parts[0]);
  } catch (const Error&) {
  }
  return 0;
}
