// Helpers shared by the io tests: the repository root, scratch directories, error capture.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/error.h"
#include "tests/error_of.h"

namespace rlaif::test {

// The repository root: $RLAIF_SOURCE_DIR (set by CTest), else derived from this file's path so
// the test binary also runs on its own.
inline std::string source_dir() {
  if (const char* env = std::getenv("RLAIF_SOURCE_DIR"); env != nullptr && *env) return env;
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().string();
}

inline std::string data_path(const std::string& relative) {
  return (std::filesystem::path(source_dir()) / "data" / relative).string();
}

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("rlaif_io_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  // A fresh file rather than truncating the old one: ext4 flushes truncate-and-rewrite to disk on
  // close (auto_da_alloc), which makes thousands of rewrites crawl on a busy disk.
  std::error_code ec;
  std::filesystem::remove(path, ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// read_bytes of a file the test needs (golden data): a missing one fails the test, naming it.
inline std::string read_required(const std::string& path) {
  EXPECT_TRUE(std::filesystem::is_regular_file(path)) << "missing test data: " << path;
  return read_bytes(path);
}

}  // namespace rlaif::test
