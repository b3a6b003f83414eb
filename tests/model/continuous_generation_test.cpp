// generate_continuously (model/continuous_generation.h): every prompt gets exactly what
// generate() gives it alone, each is reported once, ended rows are taken by waiting prompts
// (fewer steps than fixed batches), and a prompt near the context waits rather than be cut.
#include "model/continuous_generation.h"

#include <gtest/gtest.h>

#include <map>

#include "io/model_dir.h"
#include "runtime/error.h"
#include "tests/model/model_test_util.h"

namespace rlaif {
namespace {

using testing::stories_dir;

std::vector<int32_t> prompt_of(size_t length, int32_t seed) {
  std::vector<int32_t> p = {1};
  for (size_t i = 1; i < length; ++i)
    p.push_back(static_cast<int32_t>(3 + (seed * 37 + i * 11) % 400));
  return p;
}

struct Outcome {
  std::map<size_t, Generation> out;
  ContinuousGenerationStats stats;
};

Outcome run_all(const Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                const GenerationOptions& opts, const std::vector<uint64_t>& streams, int64_t rows) {
  Outcome r;
  r.stats = generate_continuously(model, prompts, opts, streams, rows, [&](size_t i, Generation g) {
    EXPECT_EQ(r.out.count(i), 0u) << "prompt " << i << " twice";
    r.out[i] = std::move(g);
  });
  return r;
}

TEST(ContinuousGeneration, EveryPromptGetsWhatItGetsAlone) {
  Transformer model = load_model(stories_dir());
  std::vector<std::vector<int32_t>> prompts;
  std::vector<uint64_t> streams;
  for (size_t i = 0; i < 10; ++i) {
    prompts.push_back(prompt_of(1 + (i * 7) % 12, static_cast<int32_t>(i)));
    streams.push_back(100 + i);
  }
  for (float temperature : {0.0f, 1.0f}) {
    SCOPED_TRACE(::testing::Message() << "temperature " << temperature);
    GenerationOptions opts;
    opts.max_new_tokens = 30;
    opts.sampling.temperature = temperature;
    opts.sampling.seed = 3;
    // Two of the commonest tokens of a greedy story as EOS: answers end at many lengths.
    const std::vector<int32_t> story = generate(model, {{1}}, opts)[0].tokens;
    opts.eos_ids = {story[2], story[5]};
    const Outcome r = run_all(model, prompts, opts, streams, 3);
    ASSERT_EQ(r.out.size(), prompts.size());
    int64_t fixed_steps = 0;  // what batches of 3 in order would take
    for (size_t start = 0; start < prompts.size(); start += 3) {
      size_t longest = 0;
      for (size_t i = start; i < std::min(start + 3, prompts.size()); ++i) {
        const Generation alone = generate(model, {prompts[i]}, opts, {streams[i]})[0];
        EXPECT_EQ(r.out.at(i).tokens, alone.tokens) << "prompt " << i;
        EXPECT_EQ(r.out.at(i).stopped_at_eos, alone.stopped_at_eos) << "prompt " << i;
        longest = std::max(longest, alone.tokens.size());
      }
      fixed_steps += static_cast<int64_t>(longest);
    }
    EXPECT_GT(r.stats.joined, 0);
    EXPECT_GT(r.stats.shrunk, 0);  // the last rows went on without the ended ones
    EXPECT_LT(r.stats.steps, fixed_steps);
    EXPECT_LT(r.stats.batches, 4);
  }
}

// Near the context (512): alone, the 500-token prompt gets 12 new tokens and the 10-token one
// 30. Together in one batch the short one would be cut to 12, so it waits for a batch of its own.
TEST(ContinuousGeneration, APromptWaitsRatherThanBeCutShort) {
  Transformer model = load_model(stories_dir());
  const std::vector<std::vector<int32_t>> prompts = {prompt_of(500, 1), prompt_of(10, 2)};
  GenerationOptions opts;
  opts.max_new_tokens = 30;
  opts.sampling.temperature = 0;
  const Outcome r = run_all(model, prompts, opts, {}, 2);
  ASSERT_EQ(r.out.size(), 2u);
  EXPECT_EQ(r.out.at(0).tokens.size(), 12u);
  EXPECT_EQ(r.out.at(1).tokens.size(), 30u);
  EXPECT_EQ(r.out.at(1).tokens, generate(model, {prompts[1]}, opts, {1})[0].tokens);
  EXPECT_EQ(r.stats.batches, 2);
}

TEST(ContinuousGeneration, StopsWhenAskedAndRefusesBadInput) {
  Transformer model = load_model(stories_dir());
  GenerationOptions opts;
  opts.max_new_tokens = 20;
  opts.sampling.temperature = 0;
  std::vector<std::vector<int32_t>> prompts(5, std::vector<int32_t>{1});
  int64_t reported = 0, asked = 0;
  const ContinuousGenerationStats stats = generate_continuously(
      model, prompts, opts, {}, 2, [&](size_t, Generation) { ++reported; },
      [&] { return ++asked == 3; });
  EXPECT_EQ(reported, 0);
  EXPECT_EQ(stats.steps, 3);
  auto nothing = [](size_t, Generation) {};
  EXPECT_THROW(generate_continuously(model, {{}}, opts, {}, 2, nothing), Error);
  EXPECT_THROW(generate_continuously(model, {prompt_of(512, 0)}, opts, {}, 2, nothing), Error);
  EXPECT_THROW(generate_continuously(model, {{1}}, opts, {}, 0, nothing), Error);
  EXPECT_THROW(generate_continuously(model, {{1}}, opts, {1, 2}, 2, nothing), Error);
}

}  // namespace
}  // namespace rlaif
