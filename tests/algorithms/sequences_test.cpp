// Prompt + completion sequences (algorithms/sequences.h): tokenisation and truncation, the
// targets and mask of padded and packed batches, and that packing leaves log-probabilities alone.
#include "algorithms/sequences.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "autograd/grad_mode.h"
#include "tests/algorithms/synthetic_sort.h"
#include "tests/support/source_dir.h"

namespace rlaif {
namespace {

using testing::sort_tokenizer;

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(TokenizeExample, LayoutIsBosTemplatePromptCompletionEos) {
  const Tokenizer& tok = sort_tokenizer();
  ChatTemplate chat;
  TokenizedExample ex = tokenize_example(tok, chat, "sort: c a", "a c", TruncationOptions{});
  EXPECT_EQ(ex.prompt, concat({tok.bos_id()}, tok.encode(chat.apply("sort: c a"))));
  EXPECT_EQ(ex.completion, concat(tok.encode("a c"), {tok.eos_id()}));
  EXPECT_EQ(tokenize_prompt(tok, chat, "sort: c a", 256), ex.prompt);

  TokenizedExample no_eos = tokenize_example(tok, chat, "sort: c a", "a c", TruncationOptions{},
                                             /*add_eos=*/false);
  EXPECT_EQ(no_eos.completion, tok.encode("a c"));
}

TEST(TokenizeExample, PromptIsCutFromTheLeftKeepingBos) {
  const Tokenizer& tok = sort_tokenizer();
  ChatTemplate chat;
  std::vector<int32_t> body = tok.encode(chat.apply("one two three four five six seven"));
  ASSERT_GT(body.size(), 8u);
  TruncationOptions t;
  t.max_length = 64;
  t.max_prompt_length = 6;
  TokenizedExample ex = tokenize_example(tok, chat, "one two three four five six seven", "x", t);
  ASSERT_EQ(ex.prompt.size(), 6u);
  EXPECT_EQ(ex.prompt[0], tok.bos_id());
  // The most recent context survives: the last five tokens of the templated prompt.
  EXPECT_EQ(std::vector<int32_t>(ex.prompt.begin() + 1, ex.prompt.end()),
            std::vector<int32_t>(body.end() - 5, body.end()));
  EXPECT_EQ(ex.completion, concat(tok.encode("x"), {tok.eos_id()}));  // untouched
}

TEST(TokenizeExample, CompletionIsCutFromTheRightAfterThePrompt) {
  const Tokenizer& tok = sort_tokenizer();
  ChatTemplate chat;
  TokenizedExample full =
      tokenize_example(tok, chat, "sort: d c b a", "a b c d", TruncationOptions{});
  const int64_t P = static_cast<int64_t>(full.prompt.size());
  ASSERT_EQ(full.completion.size(), 5u);  // ▁a ▁b ▁c ▁d </s>
  TruncationOptions t;
  t.max_prompt_length = 256;
  t.max_length = P + 2;
  TokenizedExample cut = tokenize_example(tok, chat, "sort: d c b a", "a b c d", t);
  EXPECT_EQ(cut.prompt, full.prompt);  // the prompt fits its own limit: kept whole
  EXPECT_EQ(cut.completion,
            std::vector<int32_t>(full.completion.begin(), full.completion.begin() + 2));
  // Exactly max_length + 1 tokens would keep everything but EOS: the model is not taught to stop.
  t.max_length = P + 4;
  cut = tokenize_example(tok, chat, "sort: d c b a", "a b c d", t);
  ASSERT_EQ(cut.completion.size(), 4u);
  EXPECT_NE(cut.completion.back(), tok.eos_id());
}

TEST(TokenizeExample, APromptFillingMaxLengthKeepsOneCompletionToken) {
  const Tokenizer& tok = sort_tokenizer();
  TruncationOptions t;
  t.max_length = 8;
  t.max_prompt_length = 100;  // larger than max_length: the prompt is limited to max_length - 1
  TokenizedExample ex =
      tokenize_example(tok, ChatTemplate(), "a long prompt of many words indeed", "yes", t);
  EXPECT_EQ(ex.prompt.size(), 7u);
  EXPECT_EQ(ex.prompt[0], tok.bos_id());
  EXPECT_EQ(ex.completion.size(), 1u);
  EXPECT_EQ(ex.completion[0], tok.encode("yes")[0]);
}

// Hand-made examples: ids are arbitrary.
std::vector<TokenizedExample> hand_examples() {
  return {{{1, 10, 11}, {20, 21, 2}},  // 6 tokens, 3 completion
          {{1, 12}, {22, 2}},          // 4 tokens, 2 completion
          {{1, 13}, {23}}};            // 3 tokens, 1 completion
}

TEST(TokenizeConversation, EveryReplyIsTrainedAndTruncationKeepsTheFlagsAligned) {
  const Tokenizer& tok = sort_tokenizer();
  ChatTemplate chat;
  const Conversation conversation = {
      {"user", "sort: b a"}, {"assistant", "a b"}, {"user", "sort: c a"}, {"assistant", "a c"}};
  bool split = true;
  std::vector<TokenizedExample> ex =
      tokenize_conversation(tok, chat, conversation, TruncationOptions{}, false, true, &split);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_FALSE(split);
  // The segments are encoded one by one: [BOS] "Human: sort: b a\n\nAssistant: " | "a b" |
  // "\n\nHuman: sort: c a\n\nAssistant: " | "a c" EOS.
  const std::vector<int32_t> head = tok.encode("Human: sort: b a\n\nAssistant: ");
  const std::vector<int32_t> reply = tok.encode("a b");
  const std::vector<int32_t> middle = tok.encode("\n\nHuman: sort: c a\n\nAssistant: ");
  std::vector<int32_t> prompt = concat(concat(concat({tok.bos_id()}, head), reply), middle);
  EXPECT_EQ(ex[0].prompt, prompt);
  EXPECT_EQ(ex[0].completion, concat(tok.encode("a c"), {tok.eos_id()}));
  std::vector<uint8_t> flags(prompt.size(), 0);
  for (size_t i = 0; i < reply.size(); ++i) flags[1 + head.size() + i] = 1;
  EXPECT_EQ(ex[0].prompt_trained, flags);
  EXPECT_EQ(ex[0].trained_tokens(), static_cast<int64_t>(reply.size() + ex[0].completion.size()));

  // The batch trains exactly the flagged tokens and the completion.
  SequenceBatch b = make_batch(ex, Device::cpu());
  const int32_t* targets = b.targets.data<int32_t>();
  const std::vector<int32_t> all = concat(ex[0].prompt, ex[0].completion);
  int64_t trained = 0;
  for (size_t t = 0; t + 1 < all.size(); ++t) {
    const bool want = t + 1 >= prompt.size() || flags[t + 1] != 0;
    EXPECT_EQ(targets[t], want ? all[t + 1] : kIgnoreIndex) << "position " << t;
    trained += want;
  }
  EXPECT_EQ(b.trained_tokens, trained);
  EXPECT_EQ(b.trained_tokens, ex[0].trained_tokens());

  // Cut from the left: BOS stays and the flags follow their tokens.
  TruncationOptions t;
  t.max_prompt_length = static_cast<int64_t>(middle.size() + 3);
  TokenizedExample cut = tokenize_conversation(tok, chat, conversation, t, false)[0];
  ASSERT_EQ(cut.prompt.size(), middle.size() + 3);
  EXPECT_EQ(cut.prompt[0], tok.bos_id());
  EXPECT_EQ(
      std::vector<int32_t>(cut.prompt.begin() + 1, cut.prompt.end()),
      std::vector<int32_t>(prompt.end() - static_cast<long>(middle.size() + 2), prompt.end()));
  EXPECT_EQ(std::vector<uint8_t>(cut.prompt_trained.begin() + 1, cut.prompt_trained.end()),
            std::vector<uint8_t>(flags.end() - static_cast<long>(middle.size() + 2), flags.end()));

  // The last reply only: nothing in the prompt is trained.
  TokenizedExample last =
      tokenize_conversation(tok, chat, conversation, TruncationOptions{}, true)[0];
  EXPECT_EQ(last.prompt, prompt);
  EXPECT_TRUE(last.prompt_trained.empty());
  EXPECT_EQ(last.trained_tokens(), static_cast<int64_t>(last.completion.size()));
}

// BOS comes from the tokenizer's own rule with a single-slot template (GPT-2's tokenizer.json adds
// none, Llama 3.1's adds <|begin_of_text|>) and from the template itself with a Jinja one, never
// twice.
TEST(TokenizePrompt, BosFollowsTheTokenizerOrTheJinjaTemplate) {
  const std::string dir = test::source_dir() + "/data/tokenizers/";
  const Tokenizer gpt2 = Tokenizer::load_dir(dir + "gpt2");
  ChatTemplate slot;
  EXPECT_EQ(tokenize_prompt(gpt2, slot, "Hi", 256), gpt2.encode(slot.apply("Hi"), false));

  const Tokenizer llama = Tokenizer::load_dir(dir + "llama3_1");
  ASSERT_TRUE(llama.adds_bos());
  const std::vector<int32_t> ids = tokenize_prompt(llama, slot, "Hi", 256);
  EXPECT_EQ(ids, concat({llama.bos_id()}, llama.encode(slot.apply("Hi"), false)));

  ChatTemplate own = ChatTemplate::for_model(dir + "llama3_1", "");
  ASSERT_TRUE(own.is_jinja());
  const std::vector<int32_t> templated = tokenize_prompt(llama, own, "Hi", 256);
  EXPECT_EQ(templated, llama.encode(own.apply("Hi"), false));
  ASSERT_GE(templated.size(), 2u);
  EXPECT_EQ(templated[0], llama.bos_id());
  EXPECT_NE(templated[1], llama.bos_id());
  // Cut from the left, the template's BOS is kept too.
  const std::vector<int32_t> cut = tokenize_prompt(llama, own, "Hi", 5);
  EXPECT_EQ(cut,
            concat({llama.bos_id()}, std::vector<int32_t>(templated.end() - 4, templated.end())));
  // Training on a reply: the completion is the template's, end-of-turn marker included, no EOS
  // added.
  TokenizedExample ex = tokenize_example(llama, own, "Hi", "Hello", TruncationOptions{});
  EXPECT_EQ(ex.prompt, templated);
  EXPECT_EQ(ex.completion, llama.encode("Hello<|eot_id|>", false));
}

TEST(MakeBatch, TargetsAndMaskCoverExactlyTheCompletion) {
  SequenceBatch b = make_batch(hand_examples(), Device::cpu(), /*pad_id=*/0);
  ASSERT_EQ(b.rows(), 3);
  ASSERT_EQ(b.width(), 6);
  const int I = kIgnoreIndex;
  EXPECT_EQ(b.input.ids.to_vector<int32_t>(),
            (std::vector<int32_t>{1, 10, 11, 20, 21, 2, /**/ 1, 12, 22, 2, 0, 0, /**/ 1, 13, 23, 0,
                                  0, 0}));
  // Position t predicts token t+1: trained iff that token is a completion token.
  EXPECT_EQ(
      b.targets.to_vector<int32_t>(),
      (std::vector<int32_t>{I, I, 20, 21, 2, I, /**/ I, 22, 2, I, I, I, /**/ I, 23, I, I, I, I}));
  EXPECT_EQ(b.completion_mask.to_vector<float>(),
            (std::vector<float>{0, 0, 1, 1, 1, 0, /**/ 0, 1, 1, 0, 0, 0, /**/ 0, 1, 0, 0, 0, 0}));
  EXPECT_EQ(b.input.positions.to_vector<int32_t>(),
            (std::vector<int32_t>{0, 1, 2, 3, 4, 5, /**/ 0, 1, 2, 3, 0, 0, /**/ 0, 1, 2, 0, 0, 0}));
  // Right padding sits in segment -1, attended by no real token.
  EXPECT_EQ(
      b.input.segment_ids.to_vector<int32_t>(),
      (std::vector<int32_t>{0, 0, 0, 0, 0, 0, /**/ 0, 0, 0, 0, -1, -1, /**/ 0, 0, 0, -1, -1, -1}));
  EXPECT_EQ(b.lengths, (std::vector<int64_t>{6, 4, 3}));
  EXPECT_EQ(b.trained_tokens, 6);
  EXPECT_EQ(last_token_index(b), (std::vector<int64_t>{5, 3, 2}));
}

TEST(MakePackedBatch, RowsSegmentsAndRestartingPositions) {
  // Row length 8: example 0 (6 tokens) fills row 0; example 1 (4) does not fit beside it and
  // starts row 1, where example 2 (3) joins it.
  SequenceBatch b = make_packed_batch(hand_examples(), 8, Device::cpu(), 0);
  ASSERT_EQ(b.rows(), 2);
  ASSERT_EQ(b.width(), 8);
  const int I = kIgnoreIndex;
  EXPECT_EQ(b.input.ids.to_vector<int32_t>(),
            (std::vector<int32_t>{1, 10, 11, 20, 21, 2, 0, 0, /**/ 1, 12, 22, 2, 1, 13, 23, 0}));
  EXPECT_EQ(b.input.segment_ids.to_vector<int32_t>(),
            (std::vector<int32_t>{0, 0, 0, 0, 0, 0, -1, -1, /**/ 1, 1, 1, 1, 2, 2, 2, -1}));
  EXPECT_EQ(b.input.positions.to_vector<int32_t>(),
            (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 0, 0, /**/ 0, 1, 2, 3, 0, 1, 2, 0}));
  // No target crosses an example boundary: the last token of an example predicts nothing.
  EXPECT_EQ(b.targets.to_vector<int32_t>(),
            (std::vector<int32_t>{I, I, 20, 21, 2, I, I, I, /**/ I, 22, 2, I, I, 23, I, I}));
  EXPECT_EQ(b.trained_tokens, 6);
  EXPECT_EQ(b.lengths, (std::vector<int64_t>{6, 7}));
}

TEST(MakePackedBatch, AnExampleLongerThanARowGetsARowOfItsOwn) {
  std::vector<TokenizedExample> ex = {{{1, 12}, {22, 2}}, {{1, 10, 11}, {20, 21, 2}}};
  SequenceBatch b = make_packed_batch(ex, 5, Device::cpu(), 0);
  ASSERT_EQ(b.rows(), 2);
  EXPECT_EQ(b.input.ids.to_vector<int32_t>(),
            (std::vector<int32_t>{1, 12, 22, 2, 0, /**/ 1, 10, 11, 20, 21}));
  EXPECT_EQ(b.lengths, (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(b.trained_tokens, 2 + 2);  // the cut example keeps targets 20 and 21 only
}

std::vector<TokenizedExample> sort_examples(int64_t n) {
  return testing::sort_tokenized(testing::sort_sft_examples(n, 7));
}

TEST(CompletionLogprobs, EqualTheSumOfTheCompletionTokensLogSoftmax) {
  Transformer model = testing::sort_initial_policy(3);
  NoGradGuard no_grad;
  std::vector<TokenizedExample> ex = sort_examples(2);
  ex[1].completion.pop_back();  // rows of different lengths: row 1 is padded
  SequenceBatch b = make_batch(ex, Device::cpu());
  std::vector<float> got = completion_logprobs(model, b).data().to_vector<float>();
  std::vector<float> mean =
      completion_logprobs(model, b, /*average=*/true).data().to_vector<float>();
  ASSERT_EQ(got.size(), 2u);
  for (size_t r = 0; r < ex.size(); ++r) {
    // Each example alone, with a plain log-softmax over the logits.
    std::vector<int32_t> ids = concat(ex[r].prompt, ex[r].completion);
    const int64_t T = static_cast<int64_t>(ids.size()), V = model.config().vocab_size;
    std::vector<int32_t> pos(ids.size());
    for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<int32_t>(i);
    TransformerInput in{Tensor::from_vector(ids, {1, T}), Tensor::from_vector(pos, {1, T}),
                        Tensor()};
    std::vector<float> logits = model.logits(model.hidden_states(in)).data().to_vector<float>();
    double want = 0.0;
    for (int64_t t = static_cast<int64_t>(ex[r].prompt.size()) - 1; t + 1 < T; ++t) {
      const float* row = logits.data() + t * V;
      double m = row[0], z = 0.0;
      for (int64_t v = 1; v < V; ++v) m = std::max<double>(m, row[v]);
      for (int64_t v = 0; v < V; ++v) z += std::exp(row[v] - m);
      want += row[ids[static_cast<size_t>(t + 1)]] - m - std::log(z);
    }
    EXPECT_NEAR(got[r], want, 1e-4) << "row " << r;
    EXPECT_NEAR(mean[r], want / static_cast<double>(ex[r].completion.size()), 1e-5) << "row " << r;
  }
}

TEST(CompletionLogprobs, PackingLeavesTheSummedLogProbabilityUnchanged) {
  Transformer model = testing::sort_initial_policy(4);
  NoGradGuard no_grad;
  std::vector<TokenizedExample> ex = sort_examples(9);
  ex[2].completion.resize(2);  // vary the lengths
  ex[5].prompt.erase(ex[5].prompt.begin() + 1, ex[5].prompt.begin() + 6);
  SequenceBatch padded = make_batch(ex, Device::cpu());
  SequenceBatch packed = make_packed_batch(ex, 64, Device::cpu());
  ASSERT_LT(packed.rows(), padded.rows());  // really packed
  EXPECT_EQ(packed.trained_tokens, padded.trained_tokens);
  auto total = [&](const SequenceBatch& b) {
    double s = 0.0;
    for (float v : completion_logprobs(model, b).data().to_vector<float>()) s += v;
    return s;
  };
  EXPECT_NEAR(total(packed), total(padded), 1e-4);
}

TEST(LastTokenScores, ReadTheLastRealTokenWhateverThePadding) {
  Transformer model = testing::sort_initial_policy(5);
  model.add_scalar_head();
  model.init_weights(5);
  NoGradGuard no_grad;
  std::vector<TokenizedExample> ex = sort_examples(2);
  ex[0].completion.resize(1);  // row 0 is shorter, so right-padded
  SequenceBatch both = make_batch(ex, Device::cpu());
  SequenceBatch alone = make_batch({ex[0]}, Device::cpu());
  ASSERT_GT(both.width(), alone.width());
  std::vector<float> s_both = last_token_scores(model, both).data().to_vector<float>();
  std::vector<float> s_alone = last_token_scores(model, alone).data().to_vector<float>();
  ASSERT_EQ(s_both.size(), 2u);
  EXPECT_NEAR(s_both[0], s_alone[0], 1e-5);
  // And it is the head at that position.
  std::vector<float> all =
      model.scalar_head(model.hidden_states(alone.input)).data().to_vector<float>();
  EXPECT_FLOAT_EQ(s_alone[0], all[static_cast<size_t>(alone.lengths[0] - 1)]);
}

}  // namespace
}  // namespace rlaif
