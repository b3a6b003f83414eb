// Which entries of a directory count as a run or a model (io/run_directory.h), and that removing
// them leaves the caches and the user's own files.
#include "io/run_directory.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

namespace rlaif {
namespace {

namespace fs = std::filesystem;

void touch(const fs::path& p) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << "x";
}

TEST(RunDirectory, RunAndModelEntriesButNotCachesOrOtherFiles) {
  const fs::path dir =
      fs::temp_directory_path() / ("rlaif_run_directory_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  EXPECT_TRUE(run_entries(dir.string()).empty());  // a missing directory holds nothing
  fs::create_directories(dir);
  for (const char* keep : {"requests.jsonl", "reward_requests.jsonl", "ref_logprobs.safetensors",
                           "notes.txt", "model.bin", "config.yaml"})
    touch(dir / keep);
  EXPECT_TRUE(run_entries(dir.string()).empty());
  for (const char* run : {"metrics.jsonl", "checkpoints/step_00000002/config.json",
                          "model-00001-of-00002.safetensors", "model.safetensors.index.json",
                          "tokenizer.json.xz", "events.out.tfevents.1.host.2.0", "rounds/r.jsonl",
                          "value_model/config.json", "adapter_config.json"})
    touch(dir / run);
  const std::vector<std::string> found = run_entries(dir.string());
  EXPECT_EQ(found, (std::vector<std::string>{"adapter_config.json", "checkpoints",
                                             "events.out.tfevents.1.host.2.0", "metrics.jsonl",
                                             "model-00001-of-00002.safetensors",
                                             "model.safetensors.index.json", "rounds",
                                             "tokenizer.json.xz", "value_model"}));
  EXPECT_EQ(describe_run_entries(dir.string(), found),
            "adapter_config.json, checkpoints/, events.out.tfevents.1.host.2.0 and 6 more");
  EXPECT_EQ(describe_run_entries(dir.string(), {"checkpoints", "metrics.jsonl"}),
            "checkpoints/ and metrics.jsonl");
  remove_run_entries(dir.string());
  EXPECT_TRUE(run_entries(dir.string()).empty());
  for (const char* keep : {"requests.jsonl", "reward_requests.jsonl", "ref_logprobs.safetensors",
                           "notes.txt", "model.bin", "config.yaml"})
    EXPECT_TRUE(fs::exists(dir / keep)) << keep;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rlaif
