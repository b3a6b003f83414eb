// Model weights as a Hugging Face directory stores them: either one `model.safetensors`, or
// shards `model-00001-of-00003.safetensors`, ... listed by `model.safetensors.index.json`:
//   {"metadata": {"total_size": 123}, "weight_map": {"tensor name": "shard file name", ...}}
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/safetensors.h"

namespace rlaif {

inline constexpr const char* kSafetensorsWeightsName = "model.safetensors";
inline constexpr const char* kSafetensorsIndexName = "model.safetensors.index.json";

// All tensors of a model directory behind one name lookup; every shard is mapped and validated
// up front, so a bad shard fails at open, not halfway through loading.
class SafetensorsCheckpoint {
 public:
  // Reads DIR/model.safetensors when present (Hugging Face's own precedence), else
  // DIR/model.safetensors.index.json and its shards. Throws Error naming the directory, the index
  // or the shard on any defect: neither file present, an index that is not valid JSON (a NUL
  // byte included) or lacks "weight_map", index "metadata" nested deeper than kMaxJsonDepth, a
  // shard name with a path or a NUL in it, a shard that does not hold the tensors the index maps
  // to it or holds tensors the index does not list, a tensor in two shards.
  static SafetensorsCheckpoint open_dir(const std::string& dir);
  // Whether `dir` holds model.safetensors or model.safetensors.index.json.
  static bool exists_in(const std::string& dir);

  const std::string& dir() const { return dir_; }
  // Tensor names: the single file's header order, or the weight map's order for shards.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return shard_of_.count(name) > 0; }
  // Throws Error naming the directory and the tensor when absent.
  const TensorInfo& info(const std::string& name) const;
  // Zero-copy as SafetensorsFile::tensor (the tensor keeps its shard's mapping alive).
  Tensor tensor(const std::string& name) const;
  // The file holding `name`.
  const std::string& file_of(const std::string& name) const;
  // "__metadata__" of model.safetensors, or of the first shard (rlaif writes the same into all).
  const std::map<std::string, std::string>& metadata() const;
  // The index's "metadata" with values as text (numbers such as total_size printed as JSON
  // numbers); empty for a single file.
  const std::map<std::string, std::string>& index_metadata() const { return index_metadata_; }
  const std::vector<SafetensorsFile>& files() const { return files_; }

 private:
  size_t file_index(const std::string& name) const;

  std::string dir_;
  std::vector<SafetensorsFile> files_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, size_t> shard_of_;
  std::map<std::string, std::string> index_metadata_;
};

struct SafetensorsDirOptions {
  // Hugging Face's default max_shard_size ("5GB", decimal). A tensor bigger than this gets a shard
  // of its own.
  uint64_t max_shard_bytes = 5'000'000'000;
  // "__metadata__" of every file written; {"format": "pt"} is added unless "format" is given,
  // since transformers refuses weights without it.
  std::map<std::string, std::string> metadata;
};

// Writes `tensors` into the existing directory `dir` as transformers' save_pretrained does: one
// model.safetensors when they fit in max_shard_bytes, else model-0000K-of-0000N.safetensors
// (tensors kept in the given order, a new shard started whenever the next tensor would overflow
// the current one) plus model.safetensors.index.json with {"total_size": bytes of all tensors}.
// Each file is written atomically; weight files of an earlier save that the new set does not
// include are deleted afterwards, so the directory never mixes two saves once this returns.
// Returns the file names written (shards, then the index).
std::vector<std::string> write_safetensors_dir(const std::string& dir, const NamedTensors& tensors,
                                               const SafetensorsDirOptions& options = {});

}  // namespace rlaif
