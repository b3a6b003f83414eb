// Malformed safetensors files: each defect gets its own Error naming the file (and the tensor),
// and no byte sequence crashes the reader.
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>

#include "io/safetensors.h"
#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

using test::error_of;
using test::TempDir;

// 8-byte little-endian header length (the real one unless overridden), header, data.
std::string st_file(const std::string& header, const std::string& data,
                    std::optional<uint64_t> length = std::nullopt) {
  uint64_t n = length.value_or(header.size());
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + header + data;
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  uint64_t begin, uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

struct CorruptCase {
  const char* what;
  std::string bytes;
  std::string fragment;  // what the message must say (distinct per case)
  std::string tensor;    // the tensor the message must name, if any
};

std::vector<CorruptCase> corrupt_cases() {
  const std::string z8(8, '\0'), z12(12, '\0'), z16(16, '\0'), z20(20, '\0');
  std::string valid = "{" + entry("a", "F32", "[4]", 0, 16) + "}";
  return {
      {"file shorter than 8 bytes", "abc", "shorter than the 8-byte header length", ""},
      {"truncated header", st_file("{}", "", 200), "truncated header", ""},
      {"huge header length", st_file("{}", "", uint64_t{1} << 40), "exceeds the 100 MB limit", ""},
      {"truncated data", st_file(valid, z12), "file is truncated", ""},
      {"offsets past the end",
       st_file(
           "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 1000, 1008) + "}",
           z8),
       "run past the end of the data buffer", "b"},
      {"overlapping tensors",
       st_file("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12) + "}",
               z12),
       "overlap tensor 'a'", "b"},
      {"hole between tensors",
       st_file("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 12, 20) + "}",
               z20),
       "hole in the data buffer", "b"},
      {"trailing bytes", st_file("{" + entry("a", "F32", "[2]", 0, 8) + "}", z12),
       "after the last tensor", ""},
      {"size != shape x dtype", st_file("{" + entry("a", "F32", "[3]", 0, 8) + "}", z8),
       "does not match shape [3]", "a"},
      {"unknown dtype", st_file("{" + entry("a", "F64", "[1]", 0, 8) + "}", z8),
       "unknown or unsupported dtype 'F64'", "a"},
      {"bad JSON", st_file("{\"a\": {", ""), "not valid JSON: Missing a name", ""},
      {"invalid UTF-8", st_file("{\"\xff\":1}", ""), "not valid JSON: Invalid encoding", ""},
      {"header not an object", st_file("[1, 2]", ""), "not a JSON object", ""},
      {"NUL in header", st_file(std::string("{}\0      ", 9), ""), "NUL byte", ""},
      {"entry not an object", st_file("{\"a\":5}", ""), "header entry must be an object", "a"},
      {"missing field", st_file(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", z8),
       "missing \"shape\"", "a"},
      {"dtype not a string", st_file(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", z8),
       "\"dtype\" must be a string", "a"},
      {"shape of wrong type",
       st_file(R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", z8),
       "\"shape\" must be an array of integers", "a"},
      {"negative dimension", st_file("{" + entry("a", "F32", "[-1,2]", 0, 8) + "}", z8),
       "negative dimension -1", "a"},
      {"dimension beyond int64",
       st_file("{" + entry("a", "U8", "[18446744073709551615]", 0, 8) + "}", z8), "is out of range",
       "a"},
      {"shape x dtype overflows",
       st_file("{" + entry("a", "F32", "[4611686018427387904,4]", 0, 8) + "}", z8), "overflows",
       "a"},
      {"offsets not a pair", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", z8),
       "\"data_offsets\" must be [begin, end]", "a"},
      {"begin > end", st_file("{" + entry("a", "F32", "[0]", 8, 0) + "}", z8), "begin > end", "a"},
      {"duplicate tensor name",
       st_file("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("a", "F32", "[2]", 8, 16) + "}",
               z16),
       "duplicate tensor name", "a"},
      {"metadata not strings", st_file(R"({"__metadata__":{"k":1}})", ""),
       "\"__metadata__\" must map strings to strings", ""},
  };
}

TEST(SafetensorsCorrupt, EachDefectHasItsOwnError) {
  TempDir dir;
  std::vector<CorruptCase> cases = corrupt_cases();
  std::set<std::string> fragments;
  for (size_t i = 0; i < cases.size(); ++i) {
    const CorruptCase& c = cases[i];
    SCOPED_TRACE(c.what);
    EXPECT_TRUE(fragments.insert(c.fragment).second) << "fragment reused: " << c.fragment;
    std::string path = dir.file("case" + std::to_string(i) + ".safetensors");
    test::write_bytes(path, c.bytes);
    std::string message = error_of([&] { SafetensorsFile::open(path); });
    EXPECT_NE(message.find(c.fragment), std::string::npos) << message;
    EXPECT_NE(message.find(path), std::string::npos) << "message must name the file: " << message;
    if (!c.tensor.empty()) {
      EXPECT_NE(message.find("tensor '" + c.tensor + "'"), std::string::npos)
          << "message must name the tensor: " << message;
    }
    // No other case's message applies: the fragments tell the defects apart.
    for (size_t j = 0; j < cases.size(); ++j) {
      if (j != i && cases[j].fragment != c.fragment) {
        EXPECT_EQ(message.find(cases[j].fragment), std::string::npos)
            << "'" << message << "' also matches case '" << cases[j].what << "'";
      }
    }
  }
}

TEST(SafetensorsCorrupt, MissingFileAndDirectory) {
  TempDir dir;
  std::string missing = dir.file("missing.safetensors");
  std::string message = error_of([&] { SafetensorsFile::open(missing); });
  EXPECT_NE(message.find("cannot open"), std::string::npos) << message;
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  EXPECT_NE(error_of([&] { SafetensorsFile::open(dir.str()); }).find("is a directory"),
            std::string::npos);
  test::write_bytes(dir.file("empty"), "");
  EXPECT_NE(error_of([&] { SafetensorsFile::open(dir.file("empty")); }).find("file is 0 bytes"),
            std::string::npos);
}

// Every prefix of a valid file and many single-byte corruptions of its header either load (and
// then every tensor's bytes are readable) or throw Error; none may crash.
TEST(SafetensorsCorrupt, TruncationsAndByteFlipsNeverCrash) {
  TempDir dir;
  std::string good_path = dir.file("good.safetensors");
  write_safetensors(good_path,
                    {{"w", Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3})},
                     {"b", Tensor::from_vector<int64_t>({7, 8}, {2})},
                     {"h", Tensor::empty({3}, DType::bf16)}},
                    {{"format", "pt"}});
  std::string good = test::read_bytes(good_path);
  std::string path = dir.file("mutant.safetensors");
  auto try_open = [&](const std::string& bytes) {
    test::write_bytes(path, bytes);
    try {
      SafetensorsFile file = SafetensorsFile::open(path);
      uint64_t sum = 0;
      for (const std::string& name : file.names()) {
        Tensor t = file.tensor(name);
        const auto* p = static_cast<const unsigned char*>(t.raw_data());
        for (size_t k = 0; k < t.nbytes(); ++k) sum += p[k];
      }
      static volatile uint64_t sink = 0;
      sink = sink + sum;  // the reads must happen
      return true;
    } catch (const Error&) {
      return false;
    }
  };
  for (size_t len = 0; len < good.size(); ++len) {
    EXPECT_FALSE(try_open(good.substr(0, len))) << "a " << len << "-byte prefix loaded";
  }
  EXPECT_TRUE(try_open(good));
  uint64_t n = 0;
  std::memcpy(&n, good.data(), 8);
  const char replacements[] = {'0', '9', '-', '"', '{', '}', ',', ':', ' ', '\xff', 'E'};
  for (size_t i = 0; i < 8 + n; ++i) {
    for (char r : replacements) {
      std::string mutant = good;
      mutant[i] = r;
      try_open(mutant);  // must return, one way or the other
    }
  }
}

}  // namespace
}  // namespace rlaif
