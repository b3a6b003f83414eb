// TensorBoard event files, so that runs can be watched in the viewer people already use.
//
// A file named events.out.tfevents.<seconds>.<host>.<pid> is a sequence of TFRecords, each
//   uint64 length (little-endian) | uint32 masked_crc(length bytes) | payload | uint32
//   masked_crc(payload)
// with masked_crc(x) = rotr15(crc32c(x)) + 0xa282ead8 (CRC-32C: Castagnoli's polynomial,
// reflected 0x82f63b78; crc32c("123456789") = 0xe3069283). Each payload is a serialised
// tensorflow.Event protobuf:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
//             SessionLog session_log = 6; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
//   SessionLog { SessionStatus status = 1; }  (START = 1)
// The first event carries file_version "brain.Event:2"; every scalar is one event with one value.
// A resumed run starts a new file whose first event after the version is a SessionLog START at
// the first step it will log: TensorBoard then drops what an earlier file logged from that step
// on (steps the killed run logged after its last checkpoint and the resumed run logs again).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace rlaif {

// CRC-32C of `size` bytes, and TFRecord's masked form of it.
uint32_t crc32c(const void* data, size_t size);
uint32_t masked_crc32c(const void* data, size_t size);

// One TFRecord: the framing above around `payload`.
std::string tfrecord(const std::string& payload);

class TensorBoardWriter {
 public:
  // Creates `dir` if needed and a new event file in it. A fresh run (resume_step < 0) refuses a
  // directory that already holds event files, which TensorBoard would mix with this run's; a
  // resumed run adds its file beside them and marks the restart at resume_step + 1.
  TensorBoardWriter(const std::string& dir, int64_t resume_step);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // Appends one scalar event and flushes it to disk.
  void scalar(const std::string& tag, int64_t step, double value);
  const std::string& path() const { return path_; }

 private:
  void write_event(const std::string& event);

  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace rlaif
