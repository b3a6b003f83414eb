#include "io/run_directory.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "runtime/error.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Whether an entry named `name` is one rlaif writes into a run or model directory.
bool is_run_entry(const std::string& name) {
  static const char* const kExact[] = {
      // a run
      "metrics.jsonl", "checkpoints", "rounds", "value_model",
      // a model directory
      "config.json", "model.safetensors", "model.safetensors.index.json", "adapter_config.json",
      "adapter_model.safetensors",
      // tokenizer files (io/model_dir.h, tokenizer_files), plain or xz-compressed
      "tokenizer.json", "tokenizer_config.json", "generation_config.json",
      "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt",
      "chat_template.jinja", "tokenizer.model"};
  std::string base = name;
  if (ends_with(base, ".xz")) base.resize(base.size() - 3);
  for (const char* e : kExact) {
    if (base == e) return true;
  }
  // Sharded weights (model-00001-of-00004.safetensors) and TensorBoard event files.
  if (starts_with(name, "model-") && ends_with(name, ".safetensors")) return true;
  return starts_with(name, "events.out.tfevents.");
}

}  // namespace

std::vector<std::string> run_entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (is_run_entry(name)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void remove_run_entries(const std::string& dir) {
  for (const std::string& name : run_entries(dir)) {
    std::error_code ec;
    fs::remove_all(fs::path(dir) / name, ec);
    RLAIF_CHECK(!ec, "cannot remove ", (fs::path(dir) / name).string(), ": ", ec.message());
  }
}

std::string describe_run_entries(const std::string& dir, const std::vector<std::string>& entries) {
  std::string out;
  const size_t shown = std::min<size_t>(entries.size(), 3);
  for (size_t i = 0; i < shown; ++i) {
    if (i > 0) out += i + 1 == shown && entries.size() == shown ? " and " : ", ";
    out += entries[i];
    if (fs::is_directory(fs::path(dir) / entries[i])) out += "/";
  }
  if (entries.size() > shown) out += " and " + std::to_string(entries.size() - shown) + " more";
  return out;
}

}  // namespace rlaif
