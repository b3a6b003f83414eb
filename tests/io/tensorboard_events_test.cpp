// TensorBoard event files: CRC-32C against its published check values, and files read back by a
// decoder written here from the TFRecord and protobuf specifications (not from the writer): every
// record's framing and checksums, the version event, scalars, and the restart marker of a resume.
#include "io/tensorboard_events.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "io/metrics_log.h"
#include "runtime/error.h"
#include "tests/support/temp_dir.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;

using test::temp_dir;

std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().starts_with("events.out.tfevents.")) {
      files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The fields of one decoded Event that these files use.
struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<std::pair<std::string, float>> scalars;  // summary values: (tag, simple_value)
  int64_t session_status = -1;                         // session_log.status; -1: none
};

// A minimal protobuf reader: a cursor over one message's bytes.
struct Reader {
  const unsigned char* p;
  const unsigned char* end;

  bool done() const { return p >= end; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) throw std::runtime_error("truncated varint");
      const unsigned char byte = *p++;
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    throw std::runtime_error("varint too long");
  }
  std::string bytes(size_t n) {
    if (static_cast<size_t>(end - p) < n) throw std::runtime_error("truncated field");
    std::string s(reinterpret_cast<const char*>(p), n);
    p += n;
    return s;
  }
  // Reads one field: its number, wire type, and its value (varints in `number`, the rest raw).
  void field(int* number, int* wire, uint64_t* integer, std::string* raw) {
    const uint64_t key = varint();
    *number = static_cast<int>(key >> 3);
    *wire = static_cast<int>(key & 7);
    if (*wire == 0)
      *integer = varint();
    else if (*wire == 1)
      *raw = bytes(8);
    else if (*wire == 5)
      *raw = bytes(4);
    else if (*wire == 2)
      *raw = bytes(varint());
    else
      throw std::runtime_error("unexpected wire type " + std::to_string(*wire));
  }
};

Reader reader_of(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  return {p, p + s.size()};
}

Event decode_event(const std::string& payload) {
  Event e;
  Reader r = reader_of(payload);
  while (!r.done()) {
    int number, wire;
    uint64_t integer = 0;
    std::string raw;
    r.field(&number, &wire, &integer, &raw);
    if (number == 1 && wire == 1) std::memcpy(&e.wall_time, raw.data(), 8);
    if (number == 2 && wire == 0) e.step = static_cast<int64_t>(integer);
    if (number == 3 && wire == 2) e.file_version = raw;
    if (number == 5 && wire == 2) {  // Summary { repeated Value value = 1 }
      Reader summary = reader_of(raw);
      while (!summary.done()) {
        int vn, vw;
        uint64_t vi = 0;
        std::string value;
        summary.field(&vn, &vw, &vi, &value);
        if (vn != 1) continue;
        Reader v = reader_of(value);  // Value { string tag = 1; float simple_value = 2 }
        std::string tag;
        float simple = 0;
        while (!v.done()) {
          int fn, fw;
          uint64_t fi = 0;
          std::string fr;
          v.field(&fn, &fw, &fi, &fr);
          if (fn == 1 && fw == 2) tag = fr;
          if (fn == 2 && fw == 5) std::memcpy(&simple, fr.data(), 4);
        }
        e.scalars.emplace_back(tag, simple);
      }
    }
    if (number == 6 && wire == 2) {  // SessionLog { SessionStatus status = 1 }
      Reader log = reader_of(raw);
      while (!log.done()) {
        int ln, lw;
        uint64_t li = 0;
        std::string lr;
        log.field(&ln, &lw, &li, &lr);
        if (ln == 1 && lw == 0) e.session_status = static_cast<int64_t>(li);
      }
    }
  }
  return e;
}

// Reads a file of TFRecords, checking each one's length and checksums, and decodes its events.
std::vector<Event> read_events(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<Event> events;
  size_t at = 0;
  while (at < data.size()) {
    EXPECT_LE(at + 12, data.size()) << "truncated record header at byte " << at;
    if (at + 12 > data.size()) break;
    uint64_t length;
    uint32_t length_crc, payload_crc;
    std::memcpy(&length, data.data() + at, 8);
    std::memcpy(&length_crc, data.data() + at + 8, 4);
    EXPECT_EQ(length_crc, masked_crc32c(data.data() + at, 8)) << "length checksum at " << at;
    EXPECT_LE(at + 12 + length + 4, data.size()) << "truncated record at " << at;
    if (at + 12 + length + 4 > data.size()) break;
    const std::string payload = data.substr(at + 12, length);
    std::memcpy(&payload_crc, data.data() + at + 12 + length, 4);
    EXPECT_EQ(payload_crc, masked_crc32c(payload.data(), payload.size()))
        << "payload checksum at " << at;
    events.push_back(decode_event(payload));
    at += 12 + length + 4;
  }
  return events;
}

TEST(Crc32c, PublishedCheckValues) {
  // The CRC catalogue's check value, and RFC 3720's (iSCSI) test vectors.
  EXPECT_EQ(crc32c("123456789", 9), 0xe3069283u);
  const std::vector<unsigned char> zeros(32, 0x00), ones(32, 0xff);
  std::vector<unsigned char> ascending(32), descending(32);
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<unsigned char>(i);
    descending[i] = static_cast<unsigned char>(31 - i);
  }
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8a9136aau);
  EXPECT_EQ(crc32c(ones.data(), 32), 0x62a8ab43u);
  EXPECT_EQ(crc32c(ascending.data(), 32), 0x46dd794eu);
  EXPECT_EQ(crc32c(descending.data(), 32), 0x113fdb5cu);
  EXPECT_EQ(crc32c("", 0), 0u);
}

TEST(TensorBoardWriter, ScalarsReadBackWithValidFraming) {
  const std::string dir = temp_dir("scalars");
  {
    TensorBoardWriter tb(dir, -1);
    tb.scalar("train/loss", 1, 2.5);
    tb.scalar("train/loss", 2, 1.25);
    tb.scalar("eval/val_loss", 2, 3.0e-7);
  }
  const std::vector<std::string> files = event_files(dir);
  ASSERT_EQ(files.size(), 1u);
  const std::vector<Event> events = read_events(files[0]);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_GT(events[0].wall_time, 1.6e9);  // seconds since 1970, after 2020
  const std::vector<std::tuple<int64_t, std::string, float>> want = {
      {1, "train/loss", 2.5f}, {2, "train/loss", 1.25f}, {2, "eval/val_loss", 3.0e-7f}};
  for (size_t i = 0; i < want.size(); ++i) {
    const Event& e = events[i + 1];
    EXPECT_EQ(e.step, std::get<0>(want[i]));
    ASSERT_EQ(e.scalars.size(), 1u);
    EXPECT_EQ(e.scalars[0].first, std::get<1>(want[i]));
    EXPECT_EQ(e.scalars[0].second, std::get<2>(want[i]));
    EXPECT_GE(e.wall_time, events[0].wall_time);
  }
  fs::remove_all(dir);
}

TEST(TensorBoardWriter, FreshRunRefusesAnotherRunsFilesAndResumeMarksTheRestart) {
  const std::string dir = temp_dir("resume");
  { TensorBoardWriter first(dir, -1); }
  try {
    TensorBoardWriter again(dir, -1);
    FAIL() << "a fresh run must refuse a directory with event files";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("event files"), std::string::npos) << e.what();
  }
  ::usleep(1100 * 1000);  // event file names carry whole seconds
  { TensorBoardWriter resumed(dir, 40); }
  const std::vector<std::string> files = event_files(dir);
  ASSERT_EQ(files.size(), 2u);
  const std::vector<Event> events = read_events(files[1]);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_EQ(events[1].session_status, 1);  // START: TensorBoard drops steps ≥ 41 of older files
  EXPECT_EQ(events[1].step, 41);
  fs::remove_all(dir);
}

TEST(TensorBoardWriter, MetricsLogWritesTheSameValuesTaggedByKind) {
  const std::string dir = temp_dir("metrics");
  fs::create_directories(dir);
  {
    MetricsLog log(dir + "/metrics.jsonl", -1, dir + "/tb");
    log.write(10, "train", {{"loss", 0.75}, {"lr", 1e-3}});
    log.write(10, "eval", {{"val_loss", 0.8}});
  }
  const std::vector<std::string> files = event_files(dir + "/tb");
  ASSERT_EQ(files.size(), 1u);
  std::map<std::string, std::pair<int64_t, float>> got;
  for (const Event& e : read_events(files[0])) {
    for (const auto& [tag, value] : e.scalars) got[tag] = {e.step, value};
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got["train/loss"], (std::pair<int64_t, float>{10, 0.75f}));
  EXPECT_EQ(got["train/lr"], (std::pair<int64_t, float>{10, 1e-3f}));
  EXPECT_EQ(got["eval/val_loss"], (std::pair<int64_t, float>{10, 0.8f}));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rlaif
