// A checkpoint whose write fails (here: a file size limit, as a full disk would) leaves no
// temporary directory behind and the previous checkpoint intact, and the error names the file.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <filesystem>

#include <sys/resource.h>

#include "io/checkpoint.h"
#include "runtime/error.h"
#include "tests/model/model_test_util.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// Lowers RLIMIT_FSIZE for the scope; SIGXFSZ is ignored so that a write past the limit fails with
// EFBIG instead of ending the process.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    previous_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, previous_);
  }

 private:
  rlimit saved_{};
  void (*previous_)(int) = SIG_DFL;
};

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(CheckpointWrite, AFailedWriteLeavesNoTemporaryAndThePreviousCheckpoint) {
  TempDir tmp;
  Transformer model(testing::tiny_llama());
  model.init_weights(3);
  const std::string run = tmp.str("run");
  const std::string first = save_checkpoint(run, 2, model, "", "{\"step\": 2}", {});
  const std::vector<std::string> before = entries(fs::path(first));
  try {
    FileSizeLimit limit(1024);  // far below the weights' size
    save_checkpoint(run, 4, model, "", "{\"step\": 4}", {});
    FAIL() << "a write past the file size limit succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("step_4"), std::string::npos) << e.what();
  }
  EXPECT_EQ(entries(fs::path(run) / "checkpoints"), std::vector<std::string>{"step_00000002"});
  EXPECT_EQ(entries(fs::path(first)), before);
  EXPECT_EQ(list_checkpoints(run), std::vector<std::string>{first});
}

}  // namespace
}  // namespace rlaif
