#include "io/metrics_log.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "io/atomic_file.h"
#include "runtime/error.h"

namespace rlaif {

MetricsLog::MetricsLog(const std::string& path, int64_t resume_step,
                       const std::string& tensorboard_dir)
    : path_(path) {
  if (!tensorboard_dir.empty()) {
    tensorboard_ = std::make_unique<TensorBoardWriter>(tensorboard_dir, resume_step);
  }
  if (resume_step >= 0 && std::filesystem::exists(path)) {
    truncate_to_complete_lines(path);
    std::string kept;
    read_jsonl(path, [&](const rapidjson::Value& r, int64_t) {
      if (r.HasMember("step") && r["step"].IsInt64() && r["step"].GetInt64() <= resume_step) {
        kept += to_json_line(r) + "\n";
      }
    });
    write_file_atomically(path, kept);
    writer_ = std::make_unique<JsonlWriter>(path, /*append=*/true);
  } else {
    writer_ = std::make_unique<JsonlWriter>(path, /*append=*/false);
  }
}

void MetricsLog::write(int64_t step, const std::string& kind,
                       const std::vector<std::pair<std::string, double>>& values) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("step", step, a);
  doc.AddMember("kind", rapidjson::Value(kind.c_str(), a), a);
  for (const auto& [name, value] : values) {
    rapidjson::Value key(name.c_str(), a);
    // JSON has no NaN/Inf: write them as null so the line stays valid.
    if (std::isfinite(value)) {
      doc.AddMember(key, value, a);
    } else {
      doc.AddMember(key, rapidjson::Value(), a);
    }
  }
  writer_->write(doc);
  if (tensorboard_) {
    for (const auto& [name, value] : values) tensorboard_->scalar(kind + "/" + name, step, value);
  }
}

}  // namespace rlaif
