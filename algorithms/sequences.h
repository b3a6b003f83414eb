// Prompt + completion sequences, the unit every alignment algorithm trains on: tokenisation with
// the chat template and truncation, right-padded batches (or packed rows) whose targets train
// only the completion, and the completion's summed (or averaged) log-probability under a model.
//
// Layout of one sequence, from the chat template (io/chat_template.h): with a single-slot
// template [BOS] template(prompt) completion [EOS], BOS when the tokenizer adds one and EOS the
// tokenizer's; with a model's Jinja template, its rendering as it stands (BOS and end-of-turn
// markers are the template's), encoded without adding special tokens. Each segment of the
// template's training text is encoded on its own: the last reply is the completion, everything
// before it the prompt, in which the replies of earlier turns are flagged as trained. Position t
// predicts token t+1; the loss (and log-probability) counts position t iff token t+1 is trained.
//
// Truncation (longest first, as TRL): the prompt is cut from the LEFT to max_prompt_length tokens
// (keeping a leading BOS, so the most recent context survives); then the completion is cut from
// the RIGHT so the whole sequence fits max_length (EOS is then lost: the model is not taught to
// stop there). A prompt that alone fills max_length keeps at least one completion token.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "autograd/variable.h"
#include "io/chat_message.h"
#include "io/chat_template.h"
#include "io/tokenizer.h"
#include "model/transformer.h"

namespace rlaif {

inline constexpr int kIgnoreIndex = -100;

struct TruncationOptions {
  int64_t max_length = 512;         // whole sequence
  int64_t max_prompt_length = 256;  // prompt part (BOS included)
};

struct TokenizedExample {
  std::vector<int32_t> prompt;      // [BOS] template(prompt), truncated
  std::vector<int32_t> completion;  // completion (+ EOS unless truncated away)
  // Prompt tokens that are trained too (the replies of earlier turns): empty when none, else one
  // flag per prompt token.
  std::vector<uint8_t> prompt_trained{};
  bool completion_cut = false;  // the completion lost its end to max_length
  // Tokens the loss counts: the completion's and the flagged prompt tokens, but never the first
  // token (no position predicts it).
  int64_t trained_tokens() const;
};

// Tokenises a conversation that ends with the assistant's reply: one example per sequence of
// the template's training text (ChatTemplate::training_text; several only for templates that
// rewrite earlier replies, as `one_per_reply` then reports). Every reply is trained, or only
// the last with `last_reply_only`. `add_eos` appends the tokenizer's EOS to the completion of a
// single-slot template (a Jinja template writes its own end-of-turn markers).
std::vector<TokenizedExample> tokenize_conversation(const Tokenizer& tokenizer,
                                                    const ChatTemplate& chat,
                                                    const Conversation& conversation,
                                                    const TruncationOptions& truncation,
                                                    bool last_reply_only, bool add_eos = true,
                                                    bool* one_per_reply = nullptr);

// One user prompt and its reply (the last-reply case of tokenize_conversation).
TokenizedExample tokenize_example(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                  std::string_view prompt, std::string_view completion,
                                  const TruncationOptions& truncation, bool add_eos = true);
// The reply to a prompt conversation.
TokenizedExample tokenize_reply(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                const Conversation& prompt, std::string_view reply,
                                const TruncationOptions& truncation, bool add_eos = true);

// Just the prompt part (for generation): [BOS] template(prompt), cut from the left.
std::vector<int32_t> tokenize_prompt(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                     std::string_view prompt, int64_t max_prompt_length);
std::vector<int32_t> tokenize_prompt(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                     const Conversation& prompt, int64_t max_prompt_length);

struct SequenceBatch {
  TransformerInput input;        // ids/positions/segment_ids [B, T]; padding in segment -1
  Tensor targets;                // [B, T] i32: the next token where trained, kIgnoreIndex elsewhere
  Tensor completion_mask;        // [B, T] f32: 1 where targets are trained
  std::vector<int64_t> lengths;  // real tokens per row
  int64_t trained_tokens = 0;    // Σ completion_mask
  int64_t rows() const { return input.ids.size(0); }
  int64_t width() const { return input.ids.size(1); }
};

// One right-padded row per example (T = the longest), on `device`. Padding uses token `pad_id`.
SequenceBatch make_batch(const std::vector<TokenizedExample>& examples, Device device,
                         int32_t pad_id = 0);

// Packs examples greedily, in order, into rows of `row_length` tokens; each example is its own
// attention segment with positions restarting at 0, so packing changes neither what a token sees
// nor the summed loss. An example longer than a row gets a row of its own (truncated to it).
SequenceBatch make_packed_batch(const std::vector<TokenizedExample>& examples, int64_t row_length,
                                Device device, int32_t pad_id = 0);

// Per-row log-probability of the completion, [B]: Σ_t mask·log π(target_t), or with `average`
// that sum divided by the number of completion tokens (IPO's length-normalised form).
Variable completion_logprobs(const Transformer& model, const SequenceBatch& batch,
                             bool average = false);

// Index of the last real token of every row, [B] (the position a scalar head reads). Meant for
// make_batch's one-example rows: in a packed row it is the last token of the row's last example.
std::vector<int64_t> last_token_index(const SequenceBatch& batch);

// Scalar-head output at the last real token of every row, [B] (reward and value models).
Variable last_token_scores(const Transformer& model, const SequenceBatch& batch);

}  // namespace rlaif
