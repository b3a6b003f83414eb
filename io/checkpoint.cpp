#include "io/checkpoint.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/atomic_file.h"
#include "io/crash_point.h"
#include "io/model_dir.h"
#include "io/peft_adapter.h"

namespace rlaif {
namespace fs = std::filesystem;
namespace {

constexpr const char* kStepPrefix = "step_";
constexpr const char* kTempPrefix = ".tmp-step_";

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  RLAIF_CHECK(in.good(), "cannot read ", path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

std::string checkpoint_dir(const std::string& run_dir, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "%s%08lld", kStepPrefix, static_cast<long long>(step));
  return (fs::path(run_dir) / "checkpoints" / name).string();
}

std::string save_checkpoint(const std::string& run_dir, int64_t step, const Transformer& model,
                            const std::string& tokenizer_source, const std::string& state_json,
                            const NamedTensors& state_tensors, const std::string& base_model) {
  const fs::path final_dir = checkpoint_dir(run_dir, step);
  const fs::path parent = final_dir.parent_path();
  fs::create_directories(parent);
  const fs::path temp =
      parent / (kTempPrefix + std::to_string(step) + "." + std::to_string(getpid()));
  fs::remove_all(temp);
  try {
    fs::create_directories(temp / "trainer_state");
    // Every file below is written through AtomicFileWriter (fsynced before its rename), so once
    // the directory is renamed its contents are durable.
    save_trained_model(temp.string(), model, tokenizer_source, base_model);
    write_safetensors((temp / "trainer_state" / "state.safetensors").string(), state_tensors);
    write_file_atomically((temp / "trainer_state" / "state.json").string(), state_json);
    fsync_directory((temp / "trainer_state").string());
    fsync_directory(temp.string());
  } catch (...) {
    // A write that failed (a full disk, a file size limit) leaves nothing behind; the previous
    // checkpoints were never touched.
    std::error_code ec;
    fs::remove_all(temp, ec);
    throw;
  }
  crash_point();
  if (fs::exists(final_dir)) fs::remove_all(final_dir);  // a re-run of the same step replaces it
  crash_point();
  fs::rename(temp, final_dir);
  fsync_directory(parent.string());
  return final_dir.string();
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  std::vector<std::string> out;
  fs::path dir = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(dir)) return out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind(kStepPrefix, 0) == 0)
      out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void prune_checkpoints(const std::string& run_dir, int64_t keep) {
  fs::path dir = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(dir)) return;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind(kTempPrefix, 0) == 0) fs::remove_all(entry.path());
  }
  if (keep <= 0) return;
  std::vector<std::string> all = list_checkpoints(run_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) {
    crash_point();
    fs::remove_all(all[i]);
  }
}

std::string resolve_checkpoint(const std::string& path) {
  RLAIF_CHECK(fs::exists(path), "--resume: '", path, "' does not exist");
  if (fs::exists(fs::path(path) / "trainer_state")) return path;
  std::vector<std::string> all = list_checkpoints(path);
  RLAIF_CHECK(
      !all.empty(), "--resume: '", path,
      "' is neither a checkpoint (no trainer_state/) nor a run directory with checkpoints/");
  return all.back();
}

TrainerCheckpoint read_trainer_state(const std::string& checkpoint) {
  TrainerCheckpoint ckpt;
  ckpt.dir = checkpoint;
  const std::string json_path = (fs::path(checkpoint) / "trainer_state" / "state.json").string();
  RLAIF_CHECK(fs::exists(json_path), "checkpoint ", checkpoint,
              " is incomplete: trainer_state/state.json is missing");
  ckpt.state_json = read_text(json_path);
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(ckpt.state_json.c_str());
  RLAIF_CHECK(
      !doc.HasParseError() && doc.IsObject(), json_path, " is corrupt: ",
      doc.HasParseError() ? rapidjson::GetParseError_En(doc.GetParseError()) : "not a JSON object");
  RLAIF_CHECK(doc.HasMember("format") && doc["format"].IsInt() && doc["format"].GetInt() == 1,
              json_path, ": unknown checkpoint format (this rlaif reads format 1)");
  RLAIF_CHECK(doc.HasMember("step") && doc["step"].IsInt64(), json_path, ": missing \"step\"");
  ckpt.step = doc["step"].GetInt64();
  RLAIF_CHECK(ckpt.step >= 0, json_path, ": \"step\" is ", ckpt.step, ", negative");
  const std::string tensors_path =
      (fs::path(checkpoint) / "trainer_state" / "state.safetensors").string();
  SafetensorsFile file = SafetensorsFile::open(tensors_path);  // validates every byte range
  for (const std::string& name : file.names()) ckpt.tensors.emplace_back(name, file.tensor(name));
  return ckpt;
}

}  // namespace rlaif
