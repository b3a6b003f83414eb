// Crash-safe file writes: a reader (or a process restarted after a crash) sees either the old
// file or the complete new one, never a torn mix.
//
// The bytes go to `PATH.tmp.<pid>` in the same directory (one left by a killed process is removed
// by the next writer of PATH); commit() fsyncs it, renames it over
// PATH (atomic within one filesystem) and fsyncs the directory so the rename itself survives a
// power loss. Anything that maps the old file keeps seeing the old bytes: the old inode lives on
// until its last mapping goes away.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace rlaif {

class AtomicFileWriter {
 public:
  // Creates the temporary file; throws Error naming PATH when it cannot.
  explicit AtomicFileWriter(std::string path);
  // Removes the temporary file unless commit() succeeded (an exception mid-write leaves no
  // debris and no half-written PATH).
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // Appends bytes; throws Error naming PATH on a short write (disk full, I/O error).
  void write(const void* data, size_t bytes);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  // Bytes written so far.
  size_t size() const { return written_; }
  // fsync, close, rename over PATH, fsync the directory. Call once.
  void commit();

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  size_t written_ = 0;
  bool committed_ = false;
};

// Removes the temporary files `PATH.tmp.<pid>` that processes no longer running left beside
// `path` (killed mid-write: their destructor never ran). AtomicFileWriter calls it before it
// writes, so the next write of the same file clears what a crash left; another live process's
// temporary is never touched.
void remove_stale_temporaries(const std::string& path);
// The same for every file of `dir` whose temporaries are `NAME.tmp.<pid>` with owns(NAME): for
// files whose names vary (a cache keyed by a hash), so that a temporary of a name no longer in use
// goes too.
void remove_stale_temporaries(const std::string& dir,
                              const std::function<bool(const std::string&)>& owns);

// Writes `contents` to `path` through an AtomicFileWriter.
void write_file_atomically(const std::string& path, std::string_view contents);

// fsyncs a directory so that renames and creations inside it are durable. Throws Error naming it.
void fsync_directory(const std::string& dir);

}  // namespace rlaif
