// Model directories: single-file and sharded writes, reading them back, stale-file cleanup, and
// the errors of inconsistent indexes.
#include "io/safetensors_checkpoint.h"

#include <cstring>
#include <filesystem>

#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::TempDir;

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

Tensor iota_f32(int64_t n, float start) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = start + static_cast<float>(i);
  return Tensor::from_vector(v, {n});
}

// 100 + 100 + 300 (over the limit: a shard of its own) + 60 + 60 + 60 + 8 bytes, for a
// 256-byte limit.
NamedTensors model_tensors() {
  return {{"embed", iota_f32(25, 0)},
          {"layer.0.w", iota_f32(25, 100)},
          {"huge", iota_f32(75, 200)},
          {"layer.1.w", iota_f32(15, 300)},
          {"layer.1.b", iota_f32(15, 400)},
          {"layer.2.w", iota_f32(15, 500)},
          {"step", Tensor::from_vector<int64_t>({12345}, {1})}};
}

std::vector<std::string> dir_listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(SafetensorsCheckpoint, ShardedWriteReadsBackEqual) {
  TempDir dir;
  NamedTensors tensors = model_tensors();
  SafetensorsDirOptions options;
  options.max_shard_bytes = 256;
  options.metadata = {{"producer", "rlaif-test"}};
  std::vector<std::string> written = write_safetensors_dir(dir.str(), tensors, options);
  std::vector<std::string> expected = {
      "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors", "model.safetensors.index.json"};
  EXPECT_EQ(written, expected);
  EXPECT_EQ(dir_listing(dir.str()), expected);

  SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open_dir(dir.str());
  EXPECT_EQ(ckpt.files().size(), 3u);
  ASSERT_EQ(ckpt.names().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(ckpt.names()[i], tensors[i].first);
    EXPECT_TRUE(same_bytes(ckpt.tensor(tensors[i].first), tensors[i].second)) << tensors[i].first;
  }
  // The greedy split: [embed, layer.0.w] [huge] [layer.1.w, layer.1.b, layer.2.w, step].
  EXPECT_EQ(fs::path(ckpt.file_of("layer.0.w")).filename(), "model-00001-of-00003.safetensors");
  EXPECT_EQ(fs::path(ckpt.file_of("huge")).filename(), "model-00002-of-00003.safetensors");
  EXPECT_EQ(fs::path(ckpt.file_of("layer.1.w")).filename(), "model-00003-of-00003.safetensors");
  EXPECT_EQ(fs::path(ckpt.file_of("step")).filename(), "model-00003-of-00003.safetensors");
  EXPECT_EQ(ckpt.index_metadata().at("total_size"), "688");
  EXPECT_EQ(ckpt.metadata().at("format"), "pt");
  EXPECT_EQ(ckpt.metadata().at("producer"), "rlaif-test");
  EXPECT_EQ(ckpt.info("step").dtype, DType::i64);
  EXPECT_NE(error_of([&] { ckpt.tensor("nope"); }).find("no tensor named 'nope'"),
            std::string::npos);
}

TEST(SafetensorsCheckpoint, SmallModelsGetOneFileAndStaleFilesGo) {
  TempDir dir;
  NamedTensors tensors = model_tensors();
  SafetensorsDirOptions sharded;
  sharded.max_shard_bytes = 256;
  write_safetensors_dir(dir.str(), tensors, sharded);
  test::write_bytes(dir.file("config.json"), "{}");  // not ours to touch

  // Everything fits: one model.safetensors, and the earlier shards and index are removed.
  EXPECT_EQ(write_safetensors_dir(dir.str(), tensors),
            std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(dir_listing(dir.str()), (std::vector<std::string>{"config.json", "model.safetensors"}));
  SafetensorsCheckpoint single = SafetensorsCheckpoint::open_dir(dir.str());
  EXPECT_EQ(single.files().size(), 1u);
  EXPECT_TRUE(single.index_metadata().empty());
  EXPECT_TRUE(same_bytes(single.tensor("huge"), tensors[2].second));

  // And back to shards: model.safetensors goes, since open_dir would prefer it.
  write_safetensors_dir(dir.str(), tensors, sharded);
  EXPECT_FALSE(fs::exists(dir.file("model.safetensors")));
  EXPECT_EQ(SafetensorsCheckpoint::open_dir(dir.str()).files().size(), 3u);
}

TEST(SafetensorsCheckpoint, OpensTheHuggingFaceDirectory) {
  std::string dir = test::data_path("models/stories260K");
  EXPECT_TRUE(SafetensorsCheckpoint::exists_in(dir));
  SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open_dir(dir);
  EXPECT_EQ(ckpt.names().size(), 47u);
  EXPECT_EQ(ckpt.tensor("model.embed_tokens.weight").shape(), (Shape{512, 64}));
}

class BadIndex : public ::testing::Test {
 protected:
  void SetUp() override {
    write_safetensors(dir_.file("a.safetensors"),
                      {{"x", Tensor::scalar(1)}, {"y", Tensor::scalar(2)}});
    write_safetensors(dir_.file("b.safetensors"), {{"z", Tensor::scalar(3)}});
  }
  std::string open_with_index(const std::string& index) {
    test::write_bytes(dir_.file("model.safetensors.index.json"), index);
    return error_of([&] { SafetensorsCheckpoint::open_dir(dir_.str()); });
  }
  TempDir dir_;
};

TEST_F(BadIndex, EachInconsistencyIsNamed) {
  test::write_bytes(dir_.file("model.safetensors.index.json"),
                    R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors",
                                       "z": "b.safetensors"}})");
  SafetensorsCheckpoint ok = SafetensorsCheckpoint::open_dir(dir_.str());
  EXPECT_EQ(ok.names(), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(ok.tensor("z").item(), 3.0f);

  struct Case {
    std::string index, fragment;
  };
  std::vector<Case> cases = {
      {"{", "not valid JSON"},
      {"[]", "not a JSON object"},
      {R"({"metadata": {}})", "missing \"weight_map\""},
      {R"({"weight_map": {}})", "lists no tensors"},
      {R"({"weight_map": {"x": 1}})", "the shard must be a file name"},
      {R"({"weight_map": {"x": "../a.safetensors"}})", "must be a plain file name"},
      {R"({"weight_map": {"x": "c.safetensors", "y": "a.safetensors"}})",
       "shard 'c.safetensors' cannot be read"},
      {R"({"weight_map": {"x": "b.safetensors", "y": "a.safetensors", "z": "b.safetensors"}})",
       "maps tensor 'x' to"},
      {R"({"weight_map": {"x": "a.safetensors", "z": "b.safetensors"}})",
       "holds tensor 'y', which \"weight_map\" does not list"},
      {R"({"weight_map": {"x": "a.safetensors", "x": "a.safetensors"}})",
       "duplicate tensor name 'x'"},
  };
  for (const Case& c : cases) {
    std::string message = open_with_index(c.index);
    EXPECT_NE(message.find(c.fragment), std::string::npos) << c.index << " -> " << message;
    EXPECT_NE(message.find("model.safetensors.index.json"), std::string::npos) << message;
  }
}

// A NUL byte after a valid index, and a shard name with an escaped NUL, which opening the file
// would cut at the NUL (reading a.safetensors for "a.safetensors\u0000b").
TEST_F(BadIndex, NulBytesAreErrors) {
  const std::string valid =
      R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors"}})";
  std::string message = open_with_index(valid + std::string("\0junk", 5));
  EXPECT_NE(message.find("a NUL byte at byte " + std::to_string(valid.size())), std::string::npos)
      << message;
  EXPECT_NE(message.find("model.safetensors.index.json"), std::string::npos) << message;

  message = open_with_index(
      R"({"weight_map": {"x": "a.safetensors\u0000b", "y": "a.safetensors\u0000b",
                         "z": "b.safetensors"}})");
  EXPECT_NE(message.find("tensor 'x': the shard name holds a NUL byte"), std::string::npos)
      << message;
  EXPECT_NE(message.find("model.safetensors.index.json"), std::string::npos) << message;
}

// The index's metadata values are kept as JSON text; a value nested a million levels deep is
// refused before it is written out (which recurses once per level).
TEST_F(BadIndex, DeeplyNestedMetadataIsAnError) {
  const size_t depth = 1'000'000;
  std::string index = R"({"metadata": {"x": )" + std::string(depth, '[') + std::string(depth, ']') +
                      R"(}, "weight_map": {"x": "a.safetensors"}})";
  std::string message = open_with_index(index);
  EXPECT_NE(message.find("\"metadata\" nests deeper than 256 levels"), std::string::npos)
      << message.substr(0, 300);
  EXPECT_NE(message.find("model.safetensors.index.json"), std::string::npos);
}

TEST(SafetensorsCheckpoint, EmptyDirectoryError) {
  TempDir dir;
  EXPECT_FALSE(SafetensorsCheckpoint::exists_in(dir.str()));
  std::string message = error_of([&] { SafetensorsCheckpoint::open_dir(dir.str()); });
  EXPECT_NE(message.find("holds neither model.safetensors nor model.safetensors.index.json"),
            std::string::npos)
      << message;
  EXPECT_NE(
      error_of([&] { SafetensorsCheckpoint::open_dir(dir.file("nope")); }).find("does not exist"),
      std::string::npos);
}

}  // namespace
}  // namespace rlaif
