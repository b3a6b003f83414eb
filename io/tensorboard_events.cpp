#include "io/tensorboard_events.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "runtime/error.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;

constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

// Protocol-buffer wire format: a key is (field << 3) | wire type; 0 varint, 1 fixed 64-bit,
// 2 length-delimited, 5 fixed 32-bit. Fixed-width values are little-endian.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_key(std::string& out, int field, int wire_type) {
  put_varint(out, static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire_type));
}
template <class T>
void put_fixed(std::string& out, int field, T value) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  put_key(out, field, sizeof(T) == 8 ? 1 : 5);
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // little-endian hosts only (x86-64, aarch64)
  out.append(reinterpret_cast<const char*>(bytes), sizeof(T));
}
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}
void put_int(std::string& out, int field, int64_t value) {
  put_key(out, field, 0);
  put_varint(out, static_cast<uint64_t>(value));
}

// An Event with wall_time and step set, and the rest appended by the caller.
std::string event_header(int64_t step) {
  const double wall_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string event;
  put_fixed(event, 1, wall_time);
  if (step != 0) put_int(event, 2, step);
  return event;
}

bool holds_event_files(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().filename().string().find("tfevents") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) c = kCrc32cTable[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string tfrecord(const std::string& payload) {
  std::string record;
  const uint64_t length = payload.size();
  unsigned char length_bytes[8];
  std::memcpy(length_bytes, &length, 8);
  record.append(reinterpret_cast<const char*>(length_bytes), 8);
  const uint32_t length_crc = masked_crc32c(length_bytes, 8);
  record.append(reinterpret_cast<const char*>(&length_crc), 4);
  record += payload;
  const uint32_t payload_crc = masked_crc32c(payload.data(), payload.size());
  record.append(reinterpret_cast<const char*>(&payload_crc), 4);
  return record;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir, int64_t resume_step) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  RLAIF_CHECK(!ec, "--tensorboard: cannot create directory '", dir, "': ", ec.message());
  RLAIF_CHECK(resume_step >= 0 || !holds_event_files(dir), "--tensorboard: '", dir,
              "' already holds TensorBoard event files of another run; TensorBoard would show "
              "both as one. Give each run its own directory (or resume the earlier run)");
  char host[256] = "localhost";
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "localhost");
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  path_ = (fs::path(dir) / ("events.out.tfevents." + std::to_string(seconds) + "." + host + "." +
                            std::to_string(::getpid())))
              .string();
  file_ = std::fopen(path_.c_str(), "wbx");  // never overwrites
  RLAIF_CHECK(file_ != nullptr, "--tensorboard: cannot create '", path_,
              "': ", std::strerror(errno));
  std::string version = event_header(0);
  put_bytes(version, 3, "brain.Event:2");
  write_event(version);
  if (resume_step >= 0) {
    std::string session_log;
    put_int(session_log, 1, 1);  // status: START
    std::string restart = event_header(resume_step + 1);
    put_bytes(restart, 6, session_log);
    write_event(restart);
  }
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void TensorBoardWriter::scalar(const std::string& tag, int64_t step, double value) {
  std::string summary_value;
  put_bytes(summary_value, 1, tag);
  put_fixed(summary_value, 2, static_cast<float>(value));
  std::string summary;
  put_bytes(summary, 1, summary_value);
  std::string event = event_header(step);
  put_bytes(event, 5, summary);
  write_event(event);
}

void TensorBoardWriter::write_event(const std::string& event) {
  const std::string record = tfrecord(event);
  RLAIF_CHECK(std::fwrite(record.data(), 1, record.size(), file_) == record.size() &&
                  std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0,
              "write failed on ", path_, " (disk full?)");
}

}  // namespace rlaif
