// safetensors: round trips through write_safetensors and SafetensorsFile, the zero-copy and
// keep-alive behaviour of mapped tensors, and the real Hugging Face file shipped in data/.
#include "io/safetensors.h"

#include <rapidjson/document.h>

#include <cstring>
#include <filesystem>
#include <set>

#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

using test::error_of;
using test::read_bytes;
using test::TempDir;

std::vector<bf16_t> bf16s(std::initializer_list<float> values) {
  std::vector<bf16_t> out;
  for (float v : values) out.push_back(float_to_bf16(v));
  return out;
}
std::vector<f16_t> f16s(std::initializer_list<float> values) {
  std::vector<f16_t> out;
  for (float v : values) out.push_back(float_to_f16(v));
  return out;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// Mixed dtypes in an order that would misalign the 4- and 8-byte tensors if written as given.
NamedTensors sample_tensors() {
  return {
      {"u8.bytes", Tensor::from_vector<uint8_t>({1, 2, 3, 250, 251, 252, 253}, {7})},
      {"bf16.odd", Tensor::from_vector(bf16s({1.5f, -2.0f, 3.25f, 1e30f, -0.0f}), {5})},
      {"f32.matrix", Tensor::from_vector<float>({1, -2, 3.5f, 1e-30f, 5, 6}, {2, 3})},
      {"f16.column", Tensor::from_vector(f16s({0.5f, -1.25f, 65504.0f}), {3, 1})},
      {"i32.scalar", Tensor::from_vector<int32_t>({-7}, {})},
      {"i64.pair", Tensor::from_vector<int64_t>({int64_t{1} << 40, -3}, {2})},
      {"f32.empty", Tensor::empty({0, 4}, DType::f32)},
  };
}

TEST(Safetensors, DtypeNames) {
  for (DType d : {DType::f32, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8}) {
    EXPECT_EQ(parse_safetensors_dtype(safetensors_dtype_name(d)), d);
  }
  EXPECT_STREQ(safetensors_dtype_name(DType::bf16), "BF16");
  EXPECT_FALSE(parse_safetensors_dtype("F64").has_value());
  EXPECT_FALSE(parse_safetensors_dtype("f32").has_value());
}

TEST(Safetensors, RoundTripKeepsBytesShapesOrderAndMetadata) {
  TempDir dir;
  std::string path = dir.file("t.safetensors");
  NamedTensors tensors = sample_tensors();
  std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "ünïcode \"q\""}};
  write_safetensors(path, tensors, metadata);

  SafetensorsFile file = SafetensorsFile::open(path);
  EXPECT_EQ(file.metadata(), metadata);
  ASSERT_EQ(file.names().size(), tensors.size());
  uint64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, original] = tensors[i];
    EXPECT_EQ(file.names()[i], name);  // header keeps the given order
    ASSERT_TRUE(file.contains(name));
    Tensor t = file.tensor(name);
    EXPECT_TRUE(same_bytes(t, original)) << name << ": " << t << " vs " << original;
    EXPECT_TRUE(t.device().is_cpu());
    EXPECT_EQ(file.info(name).nbytes(), original.nbytes());
    // Every tensor is naturally aligned, in the file and in memory.
    EXPECT_EQ(file.info(name).data_begin % dtype_size(t.dtype()), 0u) << name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % dtype_size(t.dtype()), 0u) << name;
    total += original.nbytes();
  }
  EXPECT_EQ(file.tensor("i32.scalar").dim(), 0);
  EXPECT_EQ(file.tensor("i32.scalar").item(), -7.0f);
  EXPECT_EQ(file.tensor("f32.empty").shape(), (Shape{0, 4}));
  EXPECT_EQ(file.data_bytes(), total);

  // The raw layout: little-endian N, a space-padded header of a multiple of 8 bytes, the data.
  std::string bytes = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n, file.header_bytes());
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + total);
  std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  size_t last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}');
  EXPECT_LT(header.size() - last - 1, 8u);
  // The 8-byte tensor comes first in the data buffer, its value at offset 0.
  int64_t first = 0;
  std::memcpy(&first, bytes.data() + 8 + n, 8);
  EXPECT_EQ(first, int64_t{1} << 40);
  // Nothing but the file itself is left in the directory.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.str()),
                          std::filesystem::directory_iterator()),
            1);
}

TEST(Safetensors, EmptyFileHasNoTensors) {
  TempDir dir;
  write_safetensors(dir.file("e.safetensors"), {});
  SafetensorsFile file = SafetensorsFile::open(dir.file("e.safetensors"));
  EXPECT_TRUE(file.names().empty());
  EXPECT_TRUE(file.metadata().empty());
  EXPECT_EQ(file.data_bytes(), 0u);
}

TEST(Safetensors, TensorsAreZeroCopyAndKeepTheMappingAlive) {
  TempDir dir;
  std::string path = dir.file("m.safetensors");
  write_safetensors(path, {{"x", Tensor::from_vector<float>({1, 2, 3}, {3})}});
  Tensor t;
  {
    SafetensorsFile file = SafetensorsFile::open(path);
    t = file.tensor("x");
    EXPECT_EQ(file.tensor("x").raw_data(), t.raw_data());  // the same mapped bytes, not copies
    SafetensorsFile copy = file;                           // copies share the mapping
    EXPECT_EQ(copy.tensor("x").raw_data(), t.raw_data());
  }
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3}));  // file handles are gone

  // Writing into a mapped tensor touches private copy-on-write pages, never the file.
  t.data<float>()[0] = 42.0f;
  EXPECT_EQ(SafetensorsFile::open(path).tensor("x").to_vector<float>(),
            (std::vector<float>{1, 2, 3}));

  // Replacing the file (atomic rename) leaves tensors of the old mapping intact.
  Tensor old = SafetensorsFile::open(path).tensor("x");
  write_safetensors(path, {{"x", Tensor::from_vector<float>({7, 8, 9}, {3})}});
  EXPECT_EQ(old.to_vector<float>(), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(SafetensorsFile::open(path).tensor("x").to_vector<float>(),
            (std::vector<float>{7, 8, 9}));
}

TEST(Safetensors, MisalignedTensorsAreCopiedToAlignedMemory) {
  // A foreign writer may leave an odd-sized header: the F32 data then starts at an odd address.
  TempDir dir;
  std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  if (header.size() % 2 == 0) header += ' ';
  uint64_t n = header.size();
  float values[2] = {1.25f, -3.5f};
  std::string bytes(reinterpret_cast<const char*>(&n), 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(values), sizeof values);
  test::write_bytes(dir.file("odd.safetensors"), bytes);

  SafetensorsFile file = SafetensorsFile::open(dir.file("odd.safetensors"));
  Tensor t = file.tensor("x");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 4, 0u);
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1.25f, -3.5f}));
}

TEST(Safetensors, MissingTensorNamesTheFileAndTheName) {
  std::string path = test::data_path("models/stories260K/model.safetensors");
  SafetensorsFile file = SafetensorsFile::open(path);
  std::string message = error_of([&] { file.tensor("lm_head.weight"); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("no tensor named 'lm_head.weight'"), std::string::npos) << message;
}

TEST(Safetensors, WriteRejectsBadInput) {
  TempDir dir;
  std::string path = dir.file("bad.safetensors");
  Tensor x = Tensor::scalar(1.0f);
  EXPECT_NE(error_of([&] {
              write_safetensors(path, {{"a", x}, {"a", x}});
            }).find("duplicate tensor name 'a'"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              write_safetensors(path, {{"__metadata__", x}});
            }).find("reserved"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              write_safetensors(path, {{"", x}});
            }).find("empty tensor name"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              write_safetensors(path, {{"u", Tensor()}});
            }).find("undefined"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              write_safetensors(path, {{"bad\xff", x}});
            }).find("not valid UTF-8"),
            std::string::npos);
  std::string missing_dir = dir.file("no/such/dir/x.safetensors");
  EXPECT_NE(error_of([&] {
              write_safetensors(missing_dir, {{"a", x}});
            }).find(missing_dir),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::is_empty(dir.str()));  // no temporary files left behind
}

// The shapes a Llama config.json implies, by Hugging Face tensor name.
std::map<std::string, Shape> llama_shapes(const std::string& config_path) {
  std::string text = read_bytes(config_path);
  rapidjson::Document c;
  c.Parse(text.c_str());
  EXPECT_TRUE(c.IsObject());
  const int64_t h = c["hidden_size"].GetInt64(), inter = c["intermediate_size"].GetInt64();
  const int64_t heads = c["num_attention_heads"].GetInt64();
  const int64_t kv = c["num_key_value_heads"].GetInt64(), v = c["vocab_size"].GetInt64();
  const int64_t head_dim = h / heads;
  std::map<std::string, Shape> shapes = {{"model.embed_tokens.weight", {v, h}},
                                         {"model.norm.weight", {h}}};
  if (!c["tie_word_embeddings"].GetBool()) shapes["lm_head.weight"] = {v, h};
  for (int64_t i = 0; i < c["num_hidden_layers"].GetInt64(); ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    shapes[p + "input_layernorm.weight"] = {h};
    shapes[p + "post_attention_layernorm.weight"] = {h};
    shapes[p + "self_attn.q_proj.weight"] = {heads * head_dim, h};
    shapes[p + "self_attn.k_proj.weight"] = {kv * head_dim, h};
    shapes[p + "self_attn.v_proj.weight"] = {kv * head_dim, h};
    shapes[p + "self_attn.o_proj.weight"] = {h, heads * head_dim};
    shapes[p + "mlp.gate_proj.weight"] = {inter, h};
    shapes[p + "mlp.up_proj.weight"] = {inter, h};
    shapes[p + "mlp.down_proj.weight"] = {h, inter};
  }
  return shapes;
}

TEST(Safetensors, ReadsTheHuggingFaceStories260K) {
  std::string dir = test::data_path("models/stories260K");
  std::string path = dir + "/model.safetensors";
  SafetensorsFile file = SafetensorsFile::open(path);
  EXPECT_EQ(file.metadata().at("format"), "pt");

  std::map<std::string, Shape> expected = llama_shapes(dir + "/config.json");
  std::set<std::string> names(file.names().begin(), file.names().end());
  std::set<std::string> expected_names;
  for (const auto& [name, shape] : expected) expected_names.insert(name);
  EXPECT_EQ(names, expected_names);

  std::string bytes = read_bytes(path);
  for (const std::string& name : file.names()) {
    Tensor t = file.tensor(name);
    EXPECT_EQ(t.dtype(), DType::f32) << name;
    EXPECT_EQ(t.shape(), expected[name]) << name;
    // The mapped bytes are the file's bytes at the header's offsets.
    const TensorInfo& info = file.info(name);
    ASSERT_LE(8 + file.header_bytes() + info.data_end, bytes.size());
    EXPECT_EQ(std::memcmp(t.raw_data(), bytes.data() + 8 + file.header_bytes() + info.data_begin,
                          t.nbytes()),
              0)
        << name;
  }
  // Norm weights of a trained model are near 1, not garbage.
  float norm = file.tensor("model.norm.weight").to_vector<float>()[0];
  EXPECT_GT(norm, 0.01f);
  EXPECT_LT(norm, 100.0f);
}

TEST(Safetensors, RewritingTheHuggingFaceFileReproducesItsTensors) {
  TempDir dir;
  SafetensorsFile hf =
      SafetensorsFile::open(test::data_path("models/stories260K/model.safetensors"));
  NamedTensors tensors;
  for (const std::string& name : hf.names()) tensors.push_back({name, hf.tensor(name)});
  write_safetensors(dir.file("copy.safetensors"), tensors, hf.metadata());
  SafetensorsFile copy = SafetensorsFile::open(dir.file("copy.safetensors"));
  EXPECT_EQ(copy.names(), hf.names());
  EXPECT_EQ(copy.metadata(), hf.metadata());
  EXPECT_EQ(copy.data_bytes(), hf.data_bytes());
  for (const std::string& name : hf.names()) {
    EXPECT_TRUE(same_bytes(copy.tensor(name), hf.tensor(name))) << name;
  }
}

}  // namespace
}  // namespace rlaif
