#include "io/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "io/crash_point.h"
#include "runtime/error.h"

namespace rlaif {

namespace {

std::string errno_text() {
  return std::strerror(errno);
}

std::string parent_dir(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// Whether process `pid` exists (one we may not signal exists too).
bool process_alive(long pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

}  // namespace

void remove_stale_temporaries(const std::string& dir,
                              const std::function<bool(const std::string&)>& owns) {
  namespace fs = std::filesystem;
  constexpr std::string_view kTmp = ".tmp.";
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir.empty() ? "." : dir, ec)) {
    const std::string name = e.path().filename().string();
    const size_t at = name.rfind(kTmp);
    if (at == std::string::npos || at == 0) continue;
    const std::string digits = name.substr(at + kTmp.size());
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos ||
        digits.size() > 9) {
      continue;
    }
    if (!owns(name.substr(0, at))) continue;
    const long pid = std::stol(digits);
    if (pid == static_cast<long>(::getpid()) || process_alive(pid)) continue;
    std::error_code ignored;
    fs::remove(e.path(), ignored);
  }
}

void remove_stale_temporaries(const std::string& path) {
  const std::string target = std::filesystem::path(path).filename().string();
  remove_stale_temporaries(parent_dir(path),
                           [&target](const std::string& name) { return name == target; });
}

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
  RLAIF_CHECK(!path_.empty(), "AtomicFileWriter: empty output path");
  remove_stale_temporaries(path_);
  tmp_path_ = path_ + ".tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  RLAIF_CHECK(fd_ >= 0, "cannot write '", path_, "': creating '", tmp_path_,
              "' failed: ", errno_text());
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_path_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t bytes) {
  RLAIF_CHECK(fd_ >= 0 && !committed_, "AtomicFileWriter: write to '", path_, "' after commit");
  const char* p = static_cast<const char*>(data);
  crash_point();
  while (bytes > 0) {
    // Linux writes at most ~2 GiB per call; loop on partial writes and EINTR.
    ssize_t n = ::write(fd_, p, bytes < (size_t{1} << 30) ? bytes : (size_t{1} << 30));
    if (n < 0 && errno == EINTR) continue;
    RLAIF_CHECK(n > 0, "cannot write '", path_, "': ", n < 0 ? errno_text() : "short write",
                " after ", written_, " bytes");
    p += n;
    bytes -= static_cast<size_t>(n);
    written_ += static_cast<size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  RLAIF_CHECK(fd_ >= 0 && !committed_, "AtomicFileWriter: '", path_, "' committed twice");
  crash_point();
  RLAIF_CHECK(::fsync(fd_) == 0, "cannot write '", path_, "': fsync failed: ", errno_text());
  int fd = fd_;
  fd_ = -1;
  RLAIF_CHECK(::close(fd) == 0, "cannot write '", path_, "': close failed: ", errno_text());
  crash_point();
  RLAIF_CHECK(::rename(tmp_path_.c_str(), path_.c_str()) == 0, "cannot write '", path_,
              "': renaming '", tmp_path_, "' over it failed: ", errno_text());
  committed_ = true;
  fsync_directory(parent_dir(path_));
}

void write_file_atomically(const std::string& path, std::string_view contents) {
  AtomicFileWriter out(path);
  out.write(contents);
  out.commit();
}

void fsync_directory(const std::string& dir) {
  crash_point();
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  RLAIF_CHECK(fd >= 0, "cannot open directory '", dir, "' to fsync it: ", errno_text());
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  // Some filesystems (e.g. certain network mounts) cannot fsync directories: EINVAL is not a
  // failure of ours to report.
  RLAIF_CHECK(rc == 0 || saved == EINVAL, "cannot fsync directory '", dir,
              "': ", std::strerror(saved));
}

}  // namespace rlaif
