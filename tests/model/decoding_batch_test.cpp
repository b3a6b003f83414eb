// DecodingBatch (model/decoding_batch.h): a prompt that joins a running batch, in a row another
// sequence has ended, generates exactly the tokens it generates alone, and the other rows are
// not disturbed by it.
#include "model/decoding_batch.h"

#include <gtest/gtest.h>

#include "io/model_dir.h"
#include "runtime/error.h"
#include "tests/model/model_test_util.h"

namespace rlaif {
namespace {

using testing::stories_dir;

// Runs `batch` until row `row` holds `tokens` tokens (or ends), joining nothing.
void run_until(DecodingBatch& batch, int64_t row, size_t tokens) {
  while (batch.live(row) && batch.generation(row).tokens.size() < tokens) {
    batch.decode();
    batch.sample();
  }
}

std::vector<int32_t> first(const std::vector<int32_t>& tokens, size_t n) {
  return {tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(std::min(n, tokens.size()))};
}

// Row 0 runs throughout; row 1 ends after 3 tokens and takes `joining` in its place. Both rows'
// tokens must equal their generations alone.
void expect_join_matches_alone(const Transformer& model, const std::vector<int32_t>& running,
                               const std::vector<int32_t>& ending,
                               const std::vector<int32_t>& joining, const GenerationOptions& opts,
                               size_t joined_tokens) {
  const int64_t capacity = model.config().max_position_embeddings;
  DecodingBatch batch(model, opts.sampling, opts.eos_ids, capacity);
  batch.start({running, ending}, {5, 6});
  batch.sample();
  run_until(batch, 1, 3);
  ASSERT_TRUE(batch.live(0));
  EXPECT_FALSE(batch.can_join(batch.length() + 1));  // longer than the cached positions
  batch.end_row(1);
  batch.decode();
  ASSERT_TRUE(batch.can_join(static_cast<int64_t>(joining.size())));
  batch.join(1, joining, 7);
  EXPECT_TRUE(batch.generation(1).tokens.empty());
  batch.sample();
  run_until(batch, 1, joined_tokens);
  const size_t got = batch.generation(1).tokens.size();
  ASSERT_GT(got, 2u);

  GenerationOptions alone_opts = opts;
  alone_opts.max_new_tokens = capacity;
  const Generation joined_alone = generate(model, {joining}, alone_opts, {7})[0];
  EXPECT_EQ(batch.generation(1).tokens, first(joined_alone.tokens, got));
  const Generation running_alone = generate(model, {running}, alone_opts, {5})[0];
  const std::vector<int32_t>& row0 = batch.generation(0).tokens;
  EXPECT_EQ(row0, first(running_alone.tokens, row0.size()));
}

TEST(DecodingBatch, AJoinedPromptGeneratesWhatItWouldAlone) {
  Transformer model = load_model(stories_dir());
  for (float temperature : {0.0f, 1.0f}) {
    SCOPED_TRACE(::testing::Message() << "temperature " << temperature);
    GenerationOptions opts;
    opts.eos_ids = {2};
    opts.sampling.temperature = temperature;
    opts.sampling.top_k = 40;
    opts.sampling.top_p = 0.9f;
    opts.sampling.seed = 17;
    expect_join_matches_alone(model, {1, 22, 55, 301, 17, 9, 40, 41}, {1, 403, 407}, {1, 80, 12},
                              opts, 24);
  }
}

// Two prompts of different lengths join in one prefill (left-padded between themselves), each
// into its own ended row: both generate what they would alone.
TEST(DecodingBatch, PromptsJoinTogetherInOnePrefill) {
  Transformer model = load_model(stories_dir());
  GenerationOptions opts;
  opts.sampling.temperature = 1.0f;
  opts.sampling.seed = 11;
  const std::vector<int32_t> c = {1, 80, 12}, d = {1, 403, 407, 9, 44};
  DecodingBatch batch(model, opts.sampling, {}, 80);
  batch.start({{1, 22, 55, 301, 17, 9}, {1, 7}, {1, 8}}, {0, 1, 2});
  batch.sample();
  run_until(batch, 1, 3);
  batch.end_row(1);
  batch.end_row(2);
  batch.decode();
  EXPECT_THROW(batch.join({1, 1}, {c, d}, {4, 5}), Error);  // one row twice
  EXPECT_THROW(batch.join({1}, {c, d}, {4, 5}), Error);     // counts differ
  batch.join({2, 1}, {c, d}, {4, 5});
  batch.sample();
  run_until(batch, 1, 16);
  GenerationOptions alone = opts;
  alone.max_new_tokens = 40;
  EXPECT_EQ(batch.generation(2).tokens, first(generate(model, {c}, alone, {4})[0].tokens, 16));
  EXPECT_EQ(batch.generation(1).tokens, first(generate(model, {d}, alone, {5})[0].tokens, 16));
}

// Dropping ended rows: the rows kept go on as they would have, renumbered in the order given.
TEST(DecodingBatch, KeptRowsGoOnAsBefore) {
  Transformer model = load_model(stories_dir());
  GenerationOptions opts;
  opts.sampling.temperature = 1.0f;
  opts.sampling.seed = 2;
  const std::vector<std::vector<int32_t>> prompts = {{1, 22}, {1, 55, 301}, {1, 17}, {1, 9, 40}};
  DecodingBatch batch(model, opts.sampling, {}, 64);
  batch.start(prompts, {10, 11, 12, 13});
  batch.sample();
  run_until(batch, 1, 5);
  batch.end_row(0);
  EXPECT_TRUE(batch.drop_ended_rows().empty());  // one of four ended: kept
  EXPECT_EQ(batch.rows(), 4);
  batch.end_row(2);
  EXPECT_EQ(batch.live_rows(), 2);
  EXPECT_THROW(batch.keep_rows({3, 3}), Error);
  EXPECT_THROW(batch.keep_rows({4}), Error);
  batch.keep_rows({3, 1});
  ASSERT_EQ(batch.rows(), 2);
  EXPECT_EQ(batch.generation(0).tokens.size(), 5u);
  batch.decode();
  batch.sample();
  run_until(batch, 0, 20);
  GenerationOptions alone = opts;
  alone.max_new_tokens = 40;
  EXPECT_EQ(batch.generation(0).tokens,
            first(generate(model, {prompts[3]}, alone, {13})[0].tokens, 20));
  EXPECT_EQ(batch.generation(1).tokens,
            first(generate(model, {prompts[1]}, alone, {11})[0].tokens, 20));
  batch.end_row(0);  // half ended: dropped
  EXPECT_EQ(batch.drop_ended_rows(), std::vector<int64_t>{1});
  EXPECT_EQ(batch.rows(), 1);
  EXPECT_EQ(batch.generation(0).tokens.size(), 20u);
}

// Learned positions (GPT-2) and a sliding window shorter than the padding before the joined
// prompt (Gemma 3's local layer): the joined row's positions restart at 0, and its window never
// reaches into the padding.
TEST(DecodingBatch, JoiningKeepsPositionsAndWindows) {
  for (ModelConfig config : {testing::tiny_gpt2(), testing::tiny_gemma3()}) {
    SCOPED_TRACE(config.model_type);
    Transformer model(config);
    model.init_weights(21);
    GenerationOptions opts;
    opts.sampling.temperature = 0;
    expect_join_matches_alone(model, {1, 5, 7, 2}, {3, 4}, {6, 9}, opts, 5);
  }
}

// A batch that started with one sequence grows by two rows: one takes a prompt, the other stays
// empty (decoded with token 0, ignored) until it is dropped; neither disturbs the first, and the
// joined prompt generates what it would alone.
void expect_added_rows_work(const Transformer& model) {
  GenerationOptions opts;
  opts.sampling.temperature = 1.0f;
  opts.sampling.seed = 5;
  const std::vector<int32_t> running = {1, 22, 55, 301, 17}, joining = {1, 80, 12};
  DecodingBatch batch(model, opts.sampling, {}, 64);
  batch.start({running}, {3});
  batch.sample();
  run_until(batch, 0, 4);
  batch.decode();
  batch.add_rows(2);
  EXPECT_EQ(batch.rows(), 3);
  EXPECT_FALSE(batch.live(1));
  EXPECT_FALSE(batch.live(2));
  batch.join(1, joining, 9);
  batch.sample();
  run_until(batch, 1, 10);
  EXPECT_TRUE(batch.generation(2).tokens.empty());
  batch.keep_rows({0, 1});  // the empty row goes
  ASSERT_EQ(batch.rows(), 2);
  run_until(batch, 1, 20);
  ASSERT_EQ(batch.generation(1).tokens.size(), 20u);
  GenerationOptions alone = opts;
  alone.max_new_tokens = 40;
  EXPECT_EQ(batch.generation(1).tokens,
            first(generate(model, {joining}, alone, {9})[0].tokens, 20));
  const std::vector<int32_t>& row0 = batch.generation(0).tokens;
  EXPECT_EQ(row0, first(generate(model, {running}, alone, {3})[0].tokens, row0.size()));
  EXPECT_THROW(batch.add_rows(-1), Error);
}

TEST(DecodingBatch, AddedRowsTakePromptsWithoutDisturbingTheOthers) {
  expect_added_rows_work(load_model(stories_dir()));
}

// The same on the GPU, where the copies and fills of joining, growing and dropping rows run as
// CUDA kernels.
// Skipped, saying why, without a CUDA device.
TEST(DecodingBatch, OnTheGpuAJoinedPromptGeneratesWhatItWouldAlone) {
  std::string why;
  if (!testing::cuda_usable(&why)) GTEST_SKIP() << why;
  Transformer model = load_model(stories_dir(), Device::cuda(0));
  GenerationOptions opts;
  opts.eos_ids = {2};
  opts.sampling.temperature = 0;
  expect_join_matches_alone(model, {1, 22, 55, 301, 17, 9, 40, 41}, {1, 403, 407}, {1, 80, 12},
                            opts, 24);
  expect_added_rows_work(model);
}

TEST(DecodingBatch, RefusesWhatDoesNotFit) {
  Transformer model = load_model(stories_dir());
  SamplingOptions greedy;
  greedy.temperature = 0;
  EXPECT_THROW(DecodingBatch(model, greedy, {}, 1), Error);
  EXPECT_THROW(DecodingBatch(model, greedy, {}, model.config().max_position_embeddings + 1), Error);
  DecodingBatch batch(model, greedy, {}, 6);
  EXPECT_FALSE(batch.can_join(1));                             // not started
  EXPECT_THROW(batch.start({{1, 2, 3, 4, 5, 6}}, {}), Error);  // no room for a token
  DecodingBatch b(model, greedy, {}, 6);
  b.start({{1, 22, 55}, {1}}, {});
  EXPECT_EQ(b.room(), 3);
  b.sample();
  EXPECT_THROW(b.join(0, {1}, 0), Error);  // row 0 is still generating
  b.end_row(1);
  EXPECT_THROW(b.join(1, {1, 2, 3, 4}, 0), Error);  // longer than the 3 cached positions
  EXPECT_THROW(b.join(2, {1}, 0), Error);           // no such row
  b.decode();
  b.sample();
  b.decode();
  b.sample();
  EXPECT_EQ(b.room(), 1);
  EXPECT_EQ(b.generation(0).tokens.size(), 3u);
  b.decode();
  EXPECT_EQ(b.room(), 0);
  EXPECT_FALSE(b.can_join(1));
  EXPECT_THROW(b.sample(), Error);
}

}  // namespace
}  // namespace rlaif
