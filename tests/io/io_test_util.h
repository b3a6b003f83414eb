// What the io tests share: file bytes written and read back, and error capture; the source root
// and scratch directories come from tests/support/.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/error.h"
#include "tests/error_of.h"
#include "tests/support/source_dir.h"
#include "tests/support/temp_dir.h"

namespace rlaif::test {

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
