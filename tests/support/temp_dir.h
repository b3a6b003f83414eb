// Scratch directories for tests, under the system's temporary folder and named after the process
// id, so that concurrent test processes (ctest -j) never share one.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>

namespace rlaif::test {

// The path "<temp>/rlaif_<test file>_<pid>_<name>", emptied (anything there is removed) but not
// created: for a test that lets the code under test create it, or creates it itself. <test file>
// is the stem of the running test's source file (e.g. sft_test), "test" outside a test, so that
// tests of different files never share a directory even when one process runs them all.
inline std::string temp_dir(const std::string& name) {
  std::string owner = "test";
  if (const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
    owner = std::filesystem::path(info->file()).stem().string();
  }
  const std::filesystem::path p =
      std::filesystem::temp_directory_path() /
      ("rlaif_" + owner + "_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(p);
  return p.string();
}

// A fresh, empty directory, removed with everything in it when the object goes. str() is its
// path, str(child) and file(child) the path of `child` inside it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("rlaif_test_" + std::to_string(::getpid()) + "_dir" + std::to_string(counter++));
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
  std::string str(const std::string& child) const { return (path_ / child).string(); }
  std::string file(const std::string& child) const { return str(child); }

 private:
  std::filesystem::path path_;
};

}  // namespace rlaif::test
