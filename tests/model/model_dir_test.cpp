// Hugging Face model directories: the shipped real model loads and re-saves byte for byte, rlaif
// directories load back with identical outputs, GPT-2's Conv1D layout is honoured, bad
// directories fail naming the tensor, and batched generation equals generating alone.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>

#include "autograd/grad_mode.h"
#include "io/model_dir.h"
#include "io/safetensors_checkpoint.h"
#include "kernels/backend.h"
#include "model/generate.h"
#include "tests/error_of.h"
#include "tests/model/model_test_util.h"

namespace rlaif {
namespace {

using test::error_of;

namespace fs = std::filesystem;
using testing::stories_dir;
using testing::TempDir;

std::vector<float> logits_of(const Transformer& m) {
  NoGradGuard no_grad;
  return m.logits(m.hidden_states(testing::tiny_batch(m.config().vocab_size)))
      .data()
      .to_vector<float>();
}

TEST(ModelDir, ShippedModelResavesByteForByte) {
  Transformer model = load_model(stories_dir());
  TempDir tmp;
  save_model(tmp.str("copy"), model, stories_dir());
  SafetensorsCheckpoint original = SafetensorsCheckpoint::open_dir(stories_dir());
  SafetensorsCheckpoint copy = SafetensorsCheckpoint::open_dir(tmp.str("copy"));
  std::vector<std::string> a = original.names(), b = copy.names();
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, b);
  for (const std::string& name : a) {
    Tensor x = original.tensor(name), y = copy.tensor(name);
    ASSERT_EQ(x.shape(), y.shape()) << name;
    ASSERT_EQ(std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()), 0) << name;
  }
  EXPECT_EQ(copy.metadata().at("format"), "pt");  // transformers refuses files without it
  EXPECT_TRUE(fs::exists(tmp.str("copy/tokenizer.model")));
  ModelConfig c = ModelConfig::load(tmp.str("copy/config.json"));
  EXPECT_EQ(c.to_json(), model.config().to_json());
}

TEST(ModelDir, InitSaveLoadGivesIdenticalOutputs) {
  for (ModelConfig config : {testing::tiny_gpt2(), testing::tiny_llama()}) {
    Transformer model(config);
    model.init_weights(9);
    TempDir tmp;
    save_model(tmp.str("m"), model);
    Transformer loaded = load_model(tmp.str("m"));
    EXPECT_EQ(logits_of(loaded), logits_of(model)) << config.model_type;
    EXPECT_EQ(loaded.parameters().size(), model.parameters().size());
  }
}

TEST(ModelDir, Gpt2UsesHuggingFaceConv1DLayout) {
  // HF GPT-2 computes y = x·W + b with c_attn.weight [D, 3D] holding q | k | v column blocks;
  // rlaif keeps q_proj as [out, in] = the transpose of the first block.
  Transformer model(testing::tiny_gpt2());
  model.init_weights(4);
  TempDir tmp;
  save_model(tmp.str("g"), model);
  SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open_dir(tmp.str("g"));
  const int64_t D = 16;
  Tensor c_attn = ckpt.tensor("transformer.h.1.attn.c_attn.weight");
  ASSERT_EQ(c_attn.shape(), (Shape{D, 3 * D}));
  Tensor fc = ckpt.tensor("transformer.h.0.mlp.c_fc.weight");
  ASSERT_EQ(fc.shape(), (Shape{D, 32}));
  const float* w = c_attn.data<float>();
  auto k = model.parameter("transformer.h.1.attn.k_proj.weight").data().to_vector<float>();
  auto fc_in = model.parameter("transformer.h.0.mlp.fc_in.weight").data().to_vector<float>();
  for (int64_t i = 0; i < D; ++i) {
    for (int64_t j = 0; j < D; ++j) {
      ASSERT_EQ(w[i * 3 * D + D + j], k[static_cast<size_t>(j * D + i)]);
    }
    for (int64_t j = 0; j < 32; ++j) {
      ASSERT_EQ(fc.data<float>()[i * 32 + j], fc_in[static_cast<size_t>(j * D + i)]);
    }
  }
  EXPECT_FALSE(ckpt.contains("lm_head.weight"));  // tied, as transformers saves GPT-2
}

TEST(ModelDir, BadDirectoriesNameTheTensor) {
  SafetensorsCheckpoint original = SafetensorsCheckpoint::open_dir(stories_dir());
  auto rewrite = [&](const std::string& dir, const std::function<void(NamedTensors&)>& edit) {
    fs::create_directories(dir);
    fs::copy_file(stories_dir() + "/config.json", dir + "/config.json");
    NamedTensors tensors;
    for (const auto& n : original.names()) tensors.emplace_back(n, original.tensor(n));
    edit(tensors);
    write_safetensors_dir(dir, tensors);
  };
  TempDir tmp;
  rewrite(tmp.str("missing"), [](NamedTensors& t) {
    std::erase_if(t, [](auto& p) { return p.first == "model.layers.3.mlp.up_proj.weight"; });
  });
  std::string msg = error_of([&] { load_model(tmp.str("missing")); });
  EXPECT_NE(msg.find("missing tensor 'model.layers.3.mlp.up_proj.weight'"), std::string::npos)
      << msg;

  rewrite(tmp.str("extra"), [](NamedTensors& t) {
    t.emplace_back("model.layers.9.surprise.weight", Tensor::zeros({2}, DType::f32));
  });
  msg = error_of([&] { load_model(tmp.str("extra")); });
  EXPECT_NE(msg.find("unexpected tensor 'model.layers.9.surprise.weight'"), std::string::npos)
      << msg;

  rewrite(tmp.str("shape"), [](NamedTensors& t) {
    for (auto& p : t) {
      if (p.first == "model.norm.weight") p.second = Tensor::zeros({65}, DType::f32);
    }
  });
  msg = error_of([&] { load_model(tmp.str("shape")); });
  EXPECT_NE(msg.find("'model.norm.weight' has shape [65]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[64]"), std::string::npos) << msg;

  msg = error_of([&] { load_model(tmp.str("nowhere")); });
  EXPECT_NE(msg.find("nowhere"), std::string::npos) << msg;
}

TEST(ModelDir, Bf16WeightsAreWidened) {
  SafetensorsCheckpoint original = SafetensorsCheckpoint::open_dir(stories_dir());
  TempDir tmp;
  fs::create_directories(tmp.str("bf16"));
  fs::copy_file(stories_dir() + "/config.json", tmp.str("bf16/config.json"));
  NamedTensors tensors;
  for (const auto& n : original.names()) {
    Tensor src = original.tensor(n);
    Tensor half = Tensor::empty(src.shape(), DType::bf16);
    backend_for(Device::cpu()).cast(src, half);
    tensors.emplace_back(n, half);
  }
  write_safetensors_dir(tmp.str("bf16"), tensors);
  Transformer a = load_model(stories_dir()), b = load_model(tmp.str("bf16"));
  std::vector<float> la = logits_of(a), lb = logits_of(b);
  double worst = 0;
  for (size_t i = 0; i < la.size(); ++i) worst = std::max(worst, double(std::fabs(la[i] - lb[i])));
  EXPECT_GT(worst, 0.0);   // the weights really were rounded
  EXPECT_LT(worst, 0.25);  // ...by bf16's 3 significant digits, not garbled
}

TEST(Generation, BatchedEqualsAlone) {
  Transformer model = load_model(stories_dir());
  std::vector<std::vector<int32_t>> prompts = {
      {1}, {1, 403, 407}, {1, 22, 55, 301, 17, 9}, {1, 80}};
  for (float temperature : {0.0f, 1.0f}) {
    GenerationOptions opts;
    opts.max_new_tokens = 24;
    opts.eos_ids = {2};
    opts.sampling.temperature = temperature;
    opts.sampling.top_k = 40;
    opts.sampling.top_p = 0.9f;
    opts.sampling.seed = 17;
    std::vector<uint64_t> streams = {0, 1, 2, 3};
    std::vector<Generation> batched = generate(model, prompts, opts, streams);
    for (size_t i = 0; i < prompts.size(); ++i) {
      std::vector<Generation> alone = generate(model, {prompts[i]}, opts, {streams[i]});
      EXPECT_EQ(batched[i].tokens, alone[0].tokens)
          << "prompt " << i << " temperature " << temperature;
      EXPECT_EQ(batched[i].tokens.size(),
                batched[i].stopped_at_eos ? batched[i].tokens.size() : 24u);
    }
  }
}

TEST(Generation, StopsAtEosAndRespectsContext) {
  Transformer model = load_model(stories_dir());
  GenerationOptions opts;
  opts.max_new_tokens = 1000;  // more than the 512-token context
  opts.sampling.temperature = 0;
  std::vector<Generation> out = generate(model, {{1}}, opts);
  EXPECT_EQ(out[0].tokens.size(), 511u);  // the context (512) minus the prompt
  // With EOS = the 5th greedy token, generation stops right there and keeps it.
  opts.eos_ids = {out[0].tokens[4]};
  std::vector<Generation> stopped = generate(model, {{1}}, opts);
  EXPECT_TRUE(stopped[0].stopped_at_eos);
  EXPECT_EQ(stopped[0].tokens.size(), 5u);
  EXPECT_THROW(generate(model, {{}}, opts), Error);
}

}  // namespace
}  // namespace rlaif
