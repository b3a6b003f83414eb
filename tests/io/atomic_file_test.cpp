// Crash-safe writes (io/atomic_file.h): a committed write replaces the file whole, a failed one
// leaves neither debris nor a torn file, and the temporaries of a killed writer are removed by
// the next writer of the same file while a live writer's are left alone.
#include "io/atomic_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "runtime/error.h"
#include "tests/support/dead_pid.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Dir {
  fs::path path =
      fs::temp_directory_path() / ("rlaif_atomic_file_test_" + std::to_string(::getpid()));
  Dir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Dir() { fs::remove_all(path); }
};

// The pid of a process that has exited (and been reaped).
TEST(AtomicFile, CommitReplacesWholeAndAnAbandonedWriteLeavesNothing) {
  Dir dir;
  const fs::path file = dir.path / "data.bin";
  write_file_atomically(file.string(), "first");
  {
    AtomicFileWriter w(file.string());
    w.write("half of a new");
    // No commit: as when an exception unwinds mid-write.
  }
  EXPECT_EQ(read_all(file), "first");
  write_file_atomically(file.string(), "second");
  EXPECT_EQ(read_all(file), "second");
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) n += e.path() != file;
  EXPECT_EQ(n, 0u) << "a temporary was left";
}

TEST(AtomicFile, AKilledWritersTemporaryGoesWithTheNextWriteALiveOnesStays) {
  Dir dir;
  const fs::path file = dir.path / "cache.tokens-00.bin";
  const fs::path stale = dir.path / ("cache.tokens-00.bin.tmp." + std::to_string(test::dead_pid()));
  const fs::path live = dir.path / ("cache.tokens-00.bin.tmp." + std::to_string(::getppid()));
  const fs::path other = dir.path / ("other.bin.tmp." + std::to_string(test::dead_pid()));
  for (const fs::path& p : {stale, live, other}) std::ofstream(p) << "partial";
  write_file_atomically(file.string(), "tokens");
  EXPECT_FALSE(fs::exists(stale)) << "a dead writer's temporary stayed";
  EXPECT_TRUE(fs::exists(live)) << "a live writer's temporary was removed";
  EXPECT_TRUE(fs::exists(other)) << "another file's temporary was removed";
  EXPECT_EQ(read_all(file), "tokens");
}

}  // namespace
}  // namespace rlaif
