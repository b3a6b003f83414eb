// OUT/metrics.jsonl: one JSON object per logged step, {"step": N, "kind": "train"|"eval", ...},
// and optionally the same values as TensorBoard scalars tagged "KIND/NAME" (e.g. train/loss).
// Numbers are written in their shortest form that reads back to the same double, so two runs'
// logs compare exactly. Each line is flushed and fsynced as written.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/jsonl.h"
#include "io/tensorboard_events.h"

namespace rlaif {

class MetricsLog {
 public:
  // A fresh run (resume_step < 0) starts an empty log. A resumed run keeps the lines up to and
  // including resume_step and drops the rest: a run killed after its last checkpoint may have
  // logged steps that the resumed run will compute again.
  // tensorboard_dir: where to write the TensorBoard event file too ("" = nowhere).
  MetricsLog(const std::string& path, int64_t resume_step, const std::string& tensorboard_dir = "");

  void write(int64_t step, const std::string& kind,
             const std::vector<std::pair<std::string, double>>& values);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<JsonlWriter> writer_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
};

}  // namespace rlaif
