// The safetensors format (Hugging Face): one file of named tensors.
//
// Layout: 8 bytes little-endian N, then N bytes of JSON header
//   {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]}, ...,
//    "__metadata__": {"key": "value"}}   (optional; string values only)
// then the data buffer; offsets are relative to its start. Tensors tile the buffer exactly (no
// holes, no overlaps), as Hugging Face's reader demands.
//
// Reading memory-maps the file and hands out tensors that point into the mapping (zero copy).
// Writing is atomic (see io/atomic_file.h). Sharded model directories: io/safetensors_checkpoint.h.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/tensor.h"

namespace rlaif {

// The dtype names safetensors uses ("F32", "BF16", "F16", "I32", "I64", "U8"): the six rlaif
// tensors can hold. Others (F64, I8, BOOL, F8_*, ...) are rejected on read with an Error.
const char* safetensors_dtype_name(DType dtype);
std::optional<DType> parse_safetensors_dtype(std::string_view name);

// One tensor's header entry.
struct TensorInfo {
  DType dtype = DType::f32;
  Shape shape;
  uint64_t data_begin = 0;  // byte offsets in the data buffer: [data_begin, data_end)
  uint64_t data_end = 0;
  uint64_t nbytes() const { return data_end - data_begin; }
};

// A validated, memory-mapped safetensors file. Copying shares the mapping; the mapping lives
// until the last SafetensorsFile copy and the last tensor taken from it are gone.
class SafetensorsFile {
 public:
  // Maps `path` and validates everything in its header before touching tensor memory: sizes,
  // JSON shape, dtypes, shapes, offsets, exact tiling of the data buffer, duplicate names.
  // Any defect throws Error naming the file (and the tensor, where there is one).
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  // Tensor names in header order (Hugging Face writers sort them; rlaif keeps the order it was
  // given).
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return infos_.count(name) > 0; }
  // Throws Error naming the file and the tensor when absent.
  const TensorInfo& info(const std::string& name) const;
  // The tensor, on the CPU, pointing into the mapping; it keeps the mapping alive on its own.
  //
  // The mapping is private copy-on-write: writing into the tensor changes this process's pages
  // only, never the file. A tensor whose bytes are not aligned to its element size in the file
  // (possible in files other writers made; never in rlaif's or HF's) is copied into an aligned
  // allocation instead, so kernels may always assume natural alignment.
  Tensor tensor(const std::string& name) const;
  // The "__metadata__" object (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Bytes of the JSON header (N), and of the data buffer.
  uint64_t header_bytes() const { return header_bytes_; }
  uint64_t data_bytes() const { return data_bytes_; }

 private:
  struct Mapping;

  std::string path_;
  std::shared_ptr<Mapping> mapping_;
  uint64_t header_bytes_ = 0;
  uint64_t data_bytes_ = 0;
  std::vector<std::string> names_;
  std::unordered_map<std::string, TensorInfo> infos_;
  std::map<std::string, std::string> metadata_;
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Writes `tensors` to `path` atomically (temporary file, fsync, rename, fsync of the directory).
// The header lists the tensors in the given order and is padded with spaces to a multiple of 8
// bytes, as Hugging Face pads it. In the data buffer the tensors are stable-sorted by element size
// (largest first) so that every tensor starts aligned to its element size in the file and hence
// in a mapping of it. Tensors on other devices are copied to the host first. Names must be
// unique, non-empty and not "__metadata__"; every tensor must be defined.
//
// Hugging Face transformers refuses model weights whose metadata lacks {"format": "pt"}: model
// writers should pass it (write_safetensors_dir does).
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace rlaif
