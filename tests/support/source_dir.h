// Where the tests find the repository's data: the source root, $RLAIF_SOURCE_DIR (CTest sets it),
// else derived from this file's path, so that a test binary also runs on its own.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace rlaif::test {

inline std::string source_dir() {
  if (const char* env = std::getenv("RLAIF_SOURCE_DIR"); env != nullptr && *env) return env;
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().string();
}

// A path under data/ of the source root.
inline std::string data_path(const std::string& relative) {
  return (std::filesystem::path(source_dir()) / "data" / relative).string();
}

}  // namespace rlaif::test
