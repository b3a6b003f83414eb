// Pretraining: the data windows, gradient accumulation equal to the large batch, weights that do
// not depend on the thread count, overfitting a single batch, and a learning curve on real text
// that must fall.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "algorithms/pretrain.h"
#include "io/token_data.h"
#include "io/tokenizer.h"
#include "tests/support/source_dir.h"
#include "tests/support/temp_dir.h"
#include "tests/support/threads.h"
#include "tests/support/tiny_models.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;

using test::source_dir;

using test::small_llama;

std::vector<int32_t> counting_tokens(int64_t n, int32_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    t[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7 + i / 13) % vocab);
  return t;
}

using test::temp_dir;

TEST(PretrainData, SequentialWindowsFollowLlmC) {
  Transformer model(small_llama(50, 8));
  std::vector<int32_t> tokens(100);
  for (int i = 0; i < 100; ++i) tokens[static_cast<size_t>(i)] = i % 50;
  PretrainDataOptions o;
  o.batch = 2;
  o.seq = 8;
  o.order = "sequential";
  PretrainTask task(model, tokens, {}, o);
  std::vector<int32_t> x, y;
  task.batch_tokens(1, x, y);  // chunk 1 starts at token 16
  EXPECT_EQ(x[0], 16);
  EXPECT_EQ(y[0], 17);
  EXPECT_EQ(x[8], 24);         // row 1 continues the chunk
  EXPECT_EQ(y[15], 32);        // the last target is the chunk's extra token
  task.batch_tokens(6, x, y);  // 6 chunks fit in 99 tokens: batch 6 wraps to chunk 0
  EXPECT_EQ(x[0], 0);
}

TEST(PretrainData, ShuffledWindowsDependOnlyOnSeedAndIndex) {
  Transformer model(small_llama(50, 8));
  std::vector<int32_t> tokens = counting_tokens(500, 50);
  PretrainDataOptions o;
  o.batch = 3;
  o.seq = 8;
  o.seed = 5;
  PretrainTask a(model, tokens, {}, o), b(model, tokens, {}, o);
  std::vector<int32_t> xa, ya, xb, yb;
  a.batch_tokens(7, xa, ya);
  b.batch_tokens(3, xb, yb);
  b.batch_tokens(7, xb, yb);
  EXPECT_EQ(xa, xb);
  o.seed = 6;
  PretrainTask c(model, tokens, {}, o);
  c.batch_tokens(7, xb, yb);
  EXPECT_NE(xa, xb);
}

TEST(Pretrain, GradientAccumulationEqualsTheLargeBatch) {
  ModelConfig config = small_llama(40, 16);
  std::vector<int32_t> tokens = counting_tokens(400, 40);
  auto grads = [&](int64_t batch, int64_t accum) {
    Transformer model(config);
    model.init_weights(3);
    model.set_requires_grad(true);
    PretrainDataOptions o;
    o.batch = batch;
    o.seq = 16;
    o.order = "sequential";
    o.grad_accum = accum;
    PretrainTask task(model, tokens, {}, o);
    for (int64_t m = 0; m < accum; ++m) task.micro_batch(0, m, 1.0 / static_cast<double>(accum));
    std::vector<float> all;
    for (auto& [name, p] : model.parameters()) {
      auto g = p.grad().to_vector<float>();
      all.insert(all.end(), g.begin(), g.end());
    }
    return all;
  };
  std::vector<float> large = grads(4, 1), accumulated = grads(2, 2), micro = grads(1, 4);
  ASSERT_EQ(large.size(), accumulated.size());
  double scale = 0;
  for (float g : large) scale = std::max(scale, double(std::fabs(g)));
  for (size_t i = 0; i < large.size(); ++i) {
    ASSERT_NEAR(accumulated[i], large[i], 1e-5 * scale) << "element " << i;
    ASSERT_NEAR(micro[i], large[i], 1e-5 * scale) << "element " << i;
  }
}

// The CPU determinism contract (kernels/backend.h) over a whole training run: the same steps on
// 1, 2 or 3 threads end on bitwise the same weights, for both architectures. The sizes make every
// kind of primitive split its work: 512 rows and a 600-wide LM head cut the products into several
// tiles each way, and the elementwise, norm, attention and optimizer loops are above their fork
// thresholds.
TEST(Pretrain, WeightsDoNotDependOnTheThreadCount) {
  for (Arch arch : {Arch::llama, Arch::gpt2}) {
    ModelConfig config = small_llama(600, 64);
    config.hidden_size = 64;
    config.head_dim = 16;
    config.intermediate_size = 160;
    if (arch == Arch::gpt2) {
      config.model_type = "gpt2";
      config.arch = Arch::gpt2;
      config.num_kv_heads = config.num_heads;
      config.qkv_bias = config.o_bias = config.mlp_bias = true;
    }
    const std::vector<int32_t> tokens = counting_tokens(8 * 64 * 4 + 1, 600);
    auto train_on = [&](int threads) {
      const test::ScopedThreads scope(threads);
      Transformer model(config);
      model.init_weights(5);
      model.set_requires_grad(true);
      PretrainDataOptions o;
      o.batch = 8;
      o.seq = 64;
      o.seed = 4;
      PretrainTask task(model, tokens, {}, o);
      TrainerOptions t;
      t.out_dir = temp_dir("threads_" + std::to_string(threads));
      t.steps = 3;
      t.schedule.kind = "constant";
      t.schedule.lr = 1e-3;
      t.label = "threads";
      TrainResult r = train(model, task, t);
      fs::remove_all(t.out_dir);
      std::vector<float> all;
      for (auto& [name, p] : model.parameters()) {
        auto w = p.data().to_vector<float>();
        all.insert(all.end(), w.begin(), w.end());
      }
      return std::make_pair(r.last_loss, all);
    };
    const auto one = train_on(1);
    for (int threads : {2, 3}) {
      const auto many = train_on(threads);
      EXPECT_EQ(many.first, one.first) << (arch == Arch::gpt2 ? "gpt2" : "llama") << ", " << threads
                                       << " threads: the last loss differs";
      EXPECT_TRUE(many.second == one.second)
          << (arch == Arch::gpt2 ? "gpt2" : "llama") << ", " << threads
          << " threads: the weights differ from one thread's";
    }
  }
}

TEST(Pretrain, OverfitsASingleBatch) {
  ModelConfig config = small_llama(40, 16);
  Transformer model(config);
  model.init_weights(1);
  model.set_requires_grad(true);
  // Exactly one 4x16 chunk: every sequential batch is the same batch.
  std::vector<int32_t> tokens = counting_tokens(4 * 16 + 1, 40);
  PretrainDataOptions o;
  o.batch = 4;
  o.seq = 16;
  o.order = "sequential";
  PretrainTask task(model, tokens, {}, o);
  TrainerOptions t;
  t.out_dir = temp_dir("overfit");
  t.steps = 150;
  t.schedule.kind = "constant";
  t.schedule.lr = 1e-2;
  t.adamw.weight_decay = 0.0;
  t.label = "overfit";
  TrainResult r = train(model, task, t);
  // From ln 40 = 3.7: a 2-layer model has ample capacity to memorise 64 tokens.
  EXPECT_LT(r.last_loss, 0.05) << "a 2-layer model should memorise 64 tokens";
  EXPECT_TRUE(fs::exists(t.out_dir + "/model.safetensors"));
  fs::remove_all(t.out_dir);
}

TEST(Pretrain, ValidationLossFallsOnShakespeare) {
  Tokenizer tok = Tokenizer::load(source_dir() + "/data/models/stories260K/tokenizer.model");
  std::vector<int32_t> tokens = load_tokens(source_dir() + "/data/text/tinyshakespeare.txt", &tok);
  tokens.resize(200000);
  std::vector<int32_t> val(tokens.end() - 20000, tokens.end());
  tokens.resize(tokens.size() - 20000);
  ModelConfig config = small_llama(tok.vocab_size(), 64);
  Transformer model(config);
  model.init_weights(2);
  model.set_requires_grad(true);
  PretrainDataOptions o;
  o.batch = 8;
  o.seq = 64;
  o.seed = 2;
  o.eval_batches = 8;
  PretrainTask task(model, tokens, val, o);
  const double before = task.evaluate()[0].second;
  TrainerOptions t;
  t.out_dir = temp_dir("shakespeare");
  t.steps = 120;
  t.schedule.lr = 5e-3;
  t.schedule.min_lr = 5e-4;
  t.schedule.warmup = 10;
  t.label = "shakespeare";
  TrainResult r = train(model, task, t);
  const double after = r.last_eval.at(0).second;
  // ln 512 = 6.24 at the start; 120 steps of 512 tokens reach 4.40 (measured on OpenBLAS's
  // Haswell, Zen and SkylakeX kernels alike): a fall of 1.5 nats leaves a third of it as slack.
  EXPECT_NEAR(before, std::log(512.0), 0.3);
  EXPECT_LT(after, before - 1.5) << "validation loss " << before << " -> " << after;
  fs::remove_all(t.out_dir);
}

}  // namespace
}  // namespace rlaif
