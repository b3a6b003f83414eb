#include "io/safetensors_checkpoint.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>
#include <unordered_set>

#include "io/atomic_file.h"
#include "io/json_depth.h"

namespace rlaif {

namespace fs = std::filesystem;

namespace {

std::string join(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RLAIF_CHECK(in, "cannot open '", path, "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  RLAIF_CHECK(!in.bad(), "cannot read '", path, "'");
  return buffer.str();
}

std::string json_text(const rapidjson::Value& value) {
  if (value.IsString()) return std::string(value.GetString(), value.GetStringLength());
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// model-NNNNN-of-NNNNN.safetensors (std::regex would do, at a cost in code size and warnings).
bool is_shard_name(const std::string& name) {
  static constexpr std::string_view shape = "model-#####-of-#####.safetensors";
  if (name.size() != shape.size()) return false;
  for (size_t i = 0; i < shape.size(); ++i) {
    bool ok = shape[i] == '#' ? (name[i] >= '0' && name[i] <= '9') : name[i] == shape[i];
    if (!ok) return false;
  }
  return true;
}

}  // namespace

bool SafetensorsCheckpoint::exists_in(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(join(dir, kSafetensorsWeightsName), ec) ||
         fs::is_regular_file(join(dir, kSafetensorsIndexName), ec);
}

SafetensorsCheckpoint SafetensorsCheckpoint::open_dir(const std::string& dir) {
  SafetensorsCheckpoint ckpt;
  ckpt.dir_ = dir;
  std::error_code ec;
  RLAIF_CHECK(fs::is_directory(dir, ec), "model directory '", dir, "' does not exist");

  std::string single = join(dir, kSafetensorsWeightsName);
  if (fs::exists(single, ec)) {
    ckpt.files_.push_back(SafetensorsFile::open(single));
    ckpt.names_ = ckpt.files_[0].names();
    for (const std::string& name : ckpt.names_) ckpt.shard_of_[name] = 0;
    return ckpt;
  }

  std::string index_path = join(dir, kSafetensorsIndexName);
  if (!fs::exists(index_path, ec)) {
    bool pytorch = fs::exists(join(dir, "pytorch_model.bin"), ec) ||
                   fs::exists(join(dir, "pytorch_model.bin.index.json"), ec);
    throw Error("model directory '", dir, "' holds neither ", kSafetensorsWeightsName, " nor ",
                kSafetensorsIndexName,
                pytorch ? " (it has pytorch_model.bin: rlaif reads only safetensors; convert it "
                          "with transformers' save_pretrained(safe_serialization=True))"
                        : "");
  }

  const std::string where = "safetensors index '" + index_path + "': ";
  std::string text = read_text(index_path);
  // JSON text holds no NUL byte; the parser would take one for the end of the file.
  RLAIF_CHECK(text.find('\0') == std::string::npos, where, "a NUL byte at byte ", text.find('\0'),
              " (binary data, not JSON text)");
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  RLAIF_CHECK(!doc.HasParseError(), where,
              "not valid JSON: ", rapidjson::GetParseError_En(doc.GetParseError()), " (at byte ",
              doc.GetErrorOffset(), ")");
  RLAIF_CHECK(doc.IsObject(), where, "not a JSON object");
  auto metadata = doc.FindMember("metadata");
  if (metadata != doc.MemberEnd() && !metadata->value.IsNull()) {
    RLAIF_CHECK(metadata->value.IsObject(), where, "\"metadata\" must be an object");
    // Its values are written back out as text, which recurses once per level.
    RLAIF_CHECK(json_depth(metadata->value) <= kMaxJsonDepth, where,
                "\"metadata\" nests deeper than ", kMaxJsonDepth, " levels");
    for (const auto& m : metadata->value.GetObject()) {
      ckpt.index_metadata_[std::string(m.name.GetString(), m.name.GetStringLength())] =
          json_text(m.value);
    }
  }
  auto weight_map = doc.FindMember("weight_map");
  RLAIF_CHECK(weight_map != doc.MemberEnd(), where, "missing \"weight_map\"");
  RLAIF_CHECK(weight_map->value.IsObject(), where,
              "\"weight_map\" must be an object of tensor name to shard file");
  RLAIF_CHECK(weight_map->value.MemberCount() > 0, where, "\"weight_map\" lists no tensors");

  std::map<std::string, size_t> file_index;  // shard file name -> index in files_
  std::vector<std::string> shard_names;
  for (const auto& m : weight_map->value.GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    RLAIF_CHECK(m.value.IsString(), where, "tensor '", name,
                "': the shard must be a file name (a string)");
    std::string shard(m.value.GetString(), m.value.GetStringLength());
    // Opening a name with an escaped NUL ("\u0000") would stop at the NUL and read another file
    // than the one named.
    RLAIF_CHECK(shard.find('\0') == std::string::npos, where, "tensor '", name,
                "': the shard name holds a NUL byte (\\u0000) at character ", shard.find('\0'),
                "; a file name cannot");
    RLAIF_CHECK(
        !shard.empty() && shard != "." && shard != ".." && shard.find('/') == std::string::npos,
        where, "tensor '", name, "': shard '", shard,
        "' must be a plain file name inside the directory");
    RLAIF_CHECK(!ckpt.shard_of_.count(name), where, "duplicate tensor name '", name,
                "' in \"weight_map\"");
    auto [it, inserted] = file_index.emplace(shard, shard_names.size());
    if (inserted) shard_names.push_back(shard);
    ckpt.shard_of_[name] = it->second;
    ckpt.names_.push_back(name);
  }

  for (const std::string& shard : shard_names) {
    std::string path = join(dir, shard);
    try {
      ckpt.files_.push_back(SafetensorsFile::open(path));
    } catch (const Error& e) {
      throw Error(where, "shard '", shard, "' cannot be read: ", e.what());
    }
  }
  for (const std::string& name : ckpt.names_) {
    const SafetensorsFile& file = ckpt.files_[ckpt.shard_of_[name]];
    RLAIF_CHECK(file.contains(name), where, "maps tensor '", name, "' to '", file.path(),
                "', which does not hold it");
  }
  for (size_t i = 0; i < ckpt.files_.size(); ++i) {
    for (const std::string& name : ckpt.files_[i].names()) {
      auto it = ckpt.shard_of_.find(name);
      RLAIF_CHECK(it != ckpt.shard_of_.end(), where, "shard '", ckpt.files_[i].path(),
                  "' holds tensor '", name, "', which \"weight_map\" does not list");
      RLAIF_CHECK(it->second == i, where, "tensor '", name, "' is in both '", ckpt.files_[i].path(),
                  "' and '", ckpt.files_[it->second].path(), "'");
    }
  }
  return ckpt;
}

size_t SafetensorsCheckpoint::file_index(const std::string& name) const {
  auto it = shard_of_.find(name);
  RLAIF_CHECK(it != shard_of_.end(), "model directory '", dir_, "': no tensor named '", name,
              "' (it holds ", names_.size(), " tensors)");
  return it->second;
}

const TensorInfo& SafetensorsCheckpoint::info(const std::string& name) const {
  return files_[file_index(name)].info(name);
}

Tensor SafetensorsCheckpoint::tensor(const std::string& name) const {
  return files_[file_index(name)].tensor(name);
}

const std::map<std::string, std::string>& SafetensorsCheckpoint::metadata() const {
  static const std::map<std::string, std::string> none;
  return files_.empty() ? none : files_.front().metadata();
}

const std::string& SafetensorsCheckpoint::file_of(const std::string& name) const {
  return files_[file_index(name)].path();
}

std::vector<std::string> write_safetensors_dir(const std::string& dir, const NamedTensors& tensors,
                                               const SafetensorsDirOptions& options) {
  const std::string where = "write_safetensors_dir '" + dir + "': ";
  std::error_code ec;
  RLAIF_CHECK(fs::is_directory(dir, ec), where, "not an existing directory");
  RLAIF_CHECK(options.max_shard_bytes > 0, where, "max_shard_bytes must be positive");
  std::map<std::string, std::string> metadata = options.metadata;
  metadata.emplace("format", "pt");
  std::unordered_set<std::string> seen;
  uint64_t total = 0;
  for (const auto& [name, t] : tensors) {
    RLAIF_CHECK(seen.insert(name).second, where, "duplicate tensor name '", name, "'");
    total += t.defined() ? t.nbytes() : 0;
  }

  // transformers' greedy split: keep the order, start a new shard when the next tensor would
  // overflow the current one (an oversized tensor sits alone).
  std::vector<NamedTensors> shards(1);
  uint64_t shard_bytes = 0;
  for (const auto& entry : tensors) {
    uint64_t bytes = entry.second.defined() ? entry.second.nbytes() : 0;
    if (!shards.back().empty() && shard_bytes + bytes > options.max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(entry);
    shard_bytes += bytes;
  }

  std::vector<std::string> written;
  if (shards.size() == 1) {
    write_safetensors(join(dir, kSafetensorsWeightsName), tensors, metadata);
    written.push_back(kSafetensorsWeightsName);
  } else {
    rapidjson::StringBuffer buffer;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> json(buffer);
    json.SetIndent(' ', 2);
    json.StartObject();
    json.Key("metadata");
    json.StartObject();
    json.Key("total_size");
    json.Uint64(total);
    json.EndObject();
    json.Key("weight_map");
    json.StartObject();
    for (size_t s = 0; s < shards.size(); ++s) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
      write_safetensors(join(dir, name), shards[s], metadata);
      written.push_back(name);
      for (const auto& entry : shards[s]) {
        json.Key(entry.first.data(), static_cast<rapidjson::SizeType>(entry.first.size()));
        json.String(name);
      }
    }
    json.EndObject();
    json.EndObject();
    std::string index(buffer.GetString(), buffer.GetSize());
    write_file_atomically(join(dir, kSafetensorsIndexName), index + "\n");
    written.push_back(kSafetensorsIndexName);
  }

  // Drop weight files of an earlier save so open_dir cannot pick up a stale mix.
  std::set<std::string> keep(written.begin(), written.end());
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    bool weights =
        name == kSafetensorsWeightsName || name == kSafetensorsIndexName || is_shard_name(name);
    if (weights && !keep.count(name)) {
      fs::remove(entry.path(), ec);
      RLAIF_CHECK(!ec, where, "cannot remove stale '", entry.path().string(), "': ", ec.message());
    }
  }
  fsync_directory(dir);
  return written;
}

}  // namespace rlaif
