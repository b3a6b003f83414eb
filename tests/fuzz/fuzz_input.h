// What the fuzz targets share: the fuzzer's bytes written to files for the parsers that read
// paths, and the split of one input into several parts.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace rlaif::fuzz {

// A directory in memory (/dev/shm where it exists), one per process, emptied for each input.
// libFuzzer runs inputs one after another in a process, so one directory suffices.
class ScratchDir {
 public:
  ScratchDir() {
    std::filesystem::path root = std::filesystem::exists("/dev/shm")
                                     ? std::filesystem::path("/dev/shm")
                                     : std::filesystem::temp_directory_path();
    path_ = root / ("rlaif-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  // Removes every file, so that no file of an earlier input leaks into this one.
  void clear() const {
    for (const auto& entry : std::filesystem::directory_iterator(path_)) {
      std::error_code ec;
      std::filesystem::remove_all(entry.path(), ec);
    }
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }
  // Writes `bytes` to `name` and returns its path.
  std::string write(const std::string& name, std::string_view bytes) const {
    std::string path = file(name);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }

 private:
  std::filesystem::path path_;
};

inline const ScratchDir& scratch() {
  static const ScratchDir dir;
  return dir;
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// Splits `text` at every occurrence of `separator` (used to pack several files into one input:
// dictionaries name the separator, so the fuzzer learns it).
inline std::vector<std::string_view> split_parts(std::string_view text, std::string_view separator,
                                                 size_t max_parts) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    size_t at = text.find(separator);
    if (at == std::string_view::npos) break;
    parts.push_back(text.substr(0, at));
    text.remove_prefix(at + separator.size());
  }
  parts.push_back(text);
  return parts;
}

// Keeps a computed value alive, so that the reads producing it are not optimised away (and ASan
// checks them).
inline volatile uint64_t sink = 0;
inline void consume(uint64_t value) {
  sink = value;
}

// The separator between files packed in one input.
inline constexpr std::string_view kPartSeparator = "\n=====\n";

}  // namespace rlaif::fuzz
