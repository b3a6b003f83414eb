// A model directory keeps its tokenizer: save_model and save_checkpoint copy every tokenizer and
// generation file of the source byte for byte, and generation stops on every EOS the model
// declares (config.json's list, the tokenizer's, generation_config.json's).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/checkpoint.h"
#include "io/model_dir.h"
#include "io/tokenizer.h"
#include "model/generate.h"
#include "tests/model/model_test_util.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;
using testing::source_dir;
using testing::stories_dir;
using testing::TempDir;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Qwen3's real tokenizer files plus the generation and chat files a Hub directory holds.
// <|im_end|> is 151645 and <|endoftext|> 151643.
const std::vector<std::string> kHubFiles = {"tokenizer.json.xz", "tokenizer_config.json",
                                            "generation_config.json", "special_tokens_map.json",
                                            "chat_template.jinja"};

void make_hub_tokenizer_dir(const std::string& dir) {
  fs::create_directories(dir);
  const fs::path qwen3 = fs::path(source_dir()) / "data/tokenizers/qwen3";
  fs::copy_file(qwen3 / "tokenizer.json.xz", fs::path(dir) / "tokenizer.json.xz");
  fs::copy_file(qwen3 / "tokenizer_config.json", fs::path(dir) / "tokenizer_config.json");
  write_text(dir + "/generation_config.json",
             "{\"bos_token_id\": 151643, \"eos_token_id\": [151645, 151643]}\n");
  write_text(dir + "/special_tokens_map.json",
             "{\"eos_token\": \"<|im_end|>\", \"pad_token\": \"<|endoftext|>\"}\n");
  write_text(dir + "/chat_template.jinja",
             "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
             "{% endfor %}");
}

void expect_same_files(const std::string& from, const std::string& to) {
  for (const std::string& name : kHubFiles) {
    ASSERT_TRUE(fs::exists(fs::path(to) / name)) << to << " lacks " << name;
    EXPECT_EQ(read_bytes(from + "/" + name), read_bytes(to + "/" + name)) << name;
  }
}

TEST(ModelDirTokenizer, SaveModelAndCheckpointCopyEveryTokenizerFileByteForByte) {
  TempDir tmp;
  make_hub_tokenizer_dir(tmp.str("source"));
  EXPECT_EQ(tokenizer_files(tmp.str("source")).size(), kHubFiles.size());
  Transformer model(testing::tiny_llama());
  model.init_weights(3);

  save_model(tmp.str("out"), model, tmp.str("source"));
  expect_same_files(tmp.str("source"), tmp.str("out"));
  const std::string checkpoint =
      save_checkpoint(tmp.str("run"), 7, model, tmp.str("source"), "{\"step\": 7}", {});
  expect_same_files(tmp.str("source"), checkpoint);
  // Saving a directory onto itself keeps the files intact.
  save_model(tmp.str("out"), model, tmp.str("out"));
  expect_same_files(tmp.str("source"), tmp.str("out"));

  const Tokenizer tok = Tokenizer::load_dir(checkpoint);
  EXPECT_STREQ(tok.format(), "tokenizer.json");
  EXPECT_EQ(tok.eos_ids(), (std::vector<int32_t>{151645, 151643}));
}

TEST(ModelDirTokenizer, SentencePieceFileIsCopiedAsTokenizerModel) {
  TempDir tmp;
  Transformer model(testing::tiny_llama());
  save_model(tmp.str("from_file"), model, stories_dir() + "/tokenizer.model");
  save_model(tmp.str("from_dir"), model, stories_dir());
  const std::string original = read_bytes(stories_dir() + "/tokenizer.model");
  EXPECT_EQ(read_bytes(tmp.str("from_file/tokenizer.model")), original);
  EXPECT_EQ(read_bytes(tmp.str("from_dir/tokenizer.model")), original);
  EXPECT_EQ(tokenizer_files(tmp.str("from_file")),
            std::vector<std::string>{tmp.str("from_file/tokenizer.model")});
}

TEST(ModelDirTokenizer, MissingTokenizerIsAnErrorNamingTheDirectory) {
  TempDir tmp;
  Transformer model(testing::tiny_llama());
  save_model(tmp.str("bare"), model);
  EXPECT_TRUE(tokenizer_files(tmp.str("bare")).empty());
  EXPECT_FALSE(Tokenizer::exists_in_dir(tmp.str("bare")));
  try {
    Tokenizer::load_dir(tmp.str("bare"));
    FAIL() << "a directory without a tokenizer loaded";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(tmp.str("bare")), std::string::npos) << message;
    EXPECT_NE(message.find("tokenizer.json, vocab.json + merges.txt, tokenizer.model"),
              std::string::npos)
        << message;
  }
  try {
    save_model(tmp.str("copy"), model, tmp.str("bare"));
    FAIL() << "a source without tokenizer files was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(tmp.str("bare")), std::string::npos) << e.what();
  }
}

TEST(ModelDirTokenizer, StopIdsJoinConfigListTokenizerAndGenerationConfig) {
  TempDir tmp;
  make_hub_tokenizer_dir(tmp.str("source"));
  const Tokenizer qwen = Tokenizer::load_dir(tmp.str("source"));
  ModelConfig config = testing::tiny_llama();
  config.eos_token_id = 151644;
  config.eos_token_ids = {151644, 151645};
  EXPECT_EQ(generation_stop_ids(config, qwen), (std::vector<int32_t>{151644, 151645, 151643}));
  config.eos_token_id = -1;
  config.eos_token_ids.clear();
  EXPECT_EQ(generation_stop_ids(config, qwen), (std::vector<int32_t>{151645, 151643}));

  // config.json's list survives a save and a load.
  config.eos_token_id = 2;
  config.eos_token_ids = {2, 7};
  const ModelConfig back = ModelConfig::from_json(config.to_json(), "saved config.json");
  EXPECT_EQ(back.eos_token_id, 2);
  EXPECT_EQ(back.eos_token_ids, (std::vector<int32_t>{2, 7}));
  const Tokenizer stories = Tokenizer::load_dir(stories_dir());
  EXPECT_EQ(generation_stop_ids(back, stories), (std::vector<int32_t>{2, 7}));
}

TEST(ModelDirTokenizer, GenerationStopsOnTheSecondIdOfTheEosList) {
  Transformer model = load_model(stories_dir());
  GenerationOptions opts;
  opts.max_new_tokens = 12;
  opts.sampling.temperature = 0;
  const std::vector<int32_t> free_run = generate(model, {{1}}, opts)[0].tokens;
  ASSERT_EQ(free_run.size(), 12u);
  // An id the greedy run never emits, then the 6th greedy token.
  int32_t unused = 3;
  while (std::find(free_run.begin(), free_run.end(), unused) != free_run.end()) ++unused;
  const int32_t sixth = free_run[5];
  ASSERT_EQ(std::find(free_run.begin(), free_run.begin() + 5, sixth), free_run.begin() + 5);
  opts.eos_ids = {unused, sixth};
  const Generation stopped = generate(model, {{1}}, opts)[0];
  EXPECT_TRUE(stopped.stopped_at_eos);
  EXPECT_EQ(stopped.tokens, std::vector<int32_t>(free_run.begin(), free_run.begin() + 6));
}

}  // namespace
}  // namespace rlaif
