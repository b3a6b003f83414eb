#include "algorithms/sequences.h"

#include <algorithm>

#include "autograd/ops.h"

namespace rlaif {

namespace {

// Whether sequences start with the tokenizer's BOS added by rlaif (a Jinja template writes its
// own).
bool adds_bos(const Tokenizer& tokenizer, const ChatTemplate& chat) {
  return !chat.is_jinja() && tokenizer.adds_bos() && tokenizer.bos_id() >= 0;
}

// Keeps the last `room` tokens of `tokens` (and `flags`, when not empty), and a leading BOS.
void cut_left(std::vector<int32_t>& tokens, std::vector<uint8_t>& flags, int64_t room,
              int32_t bos) {
  room = std::max<int64_t>(room, 1);
  if (static_cast<int64_t>(tokens.size()) <= room) return;
  const bool keep_bos = bos >= 0 && !tokens.empty() && tokens.front() == bos;
  const size_t keep = static_cast<size_t>(room - (keep_bos ? 1 : 0));
  const size_t drop = tokens.size() - keep - (keep_bos ? 1 : 0);
  const size_t from = keep_bos ? 1 : 0;
  tokens.erase(tokens.begin() + static_cast<long>(from),
               tokens.begin() + static_cast<long>(from + drop));
  if (!flags.empty()) {
    flags.erase(flags.begin() + static_cast<long>(from),
                flags.begin() + static_cast<long>(from + drop));
  }
}

TokenizedExample tokenize_sequence(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                   const ChatTemplate::Sequence& sequence,
                                   const TruncationOptions& truncation, bool add_eos) {
  RLAIF_CHECK(truncation.max_length >= 2 && truncation.max_prompt_length >= 1,
              "tokenize: --max-length must be ≥ 2 and --max-prompt-length ≥ 1");
  RLAIF_CHECK(!sequence.empty() && sequence.back().trained,
              "tokenize: a training sequence must end with a reply");
  TokenizedExample ex;
  if (adds_bos(tokenizer, chat)) ex.prompt.push_back(tokenizer.bos_id());
  bool any_trained = false;
  for (size_t i = 0; i + 1 < sequence.size(); ++i) {
    const std::vector<int32_t> ids = tokenizer.encode(sequence[i].text, false);
    ex.prompt.insert(ex.prompt.end(), ids.begin(), ids.end());
    any_trained = any_trained || sequence[i].trained;
    if (sequence[i].trained || !ex.prompt_trained.empty()) {
      ex.prompt_trained.resize(ex.prompt.size() - ids.size(), 0);
      ex.prompt_trained.resize(ex.prompt.size(), sequence[i].trained ? 1 : 0);
    }
  }
  if (!any_trained) ex.prompt_trained.clear();
  ex.completion = tokenizer.encode(sequence.back().text, false);
  if (add_eos && !chat.is_jinja() && tokenizer.eos_id() >= 0) {
    ex.completion.push_back(tokenizer.eos_id());
  }
  cut_left(ex.prompt, ex.prompt_trained,
           std::min(truncation.max_prompt_length, truncation.max_length - 1), tokenizer.bos_id());
  const int64_t room = truncation.max_length - static_cast<int64_t>(ex.prompt.size());
  if (static_cast<int64_t>(ex.completion.size()) > room) {
    ex.completion.resize(static_cast<size_t>(room));
    ex.completion_cut = true;
  }
  return ex;
}

}  // namespace

int64_t TokenizedExample::trained_tokens() const {
  int64_t n = static_cast<int64_t>(completion.size());
  for (size_t i = 1; i < prompt_trained.size(); ++i) n += prompt_trained[i];
  if (prompt.empty() && !completion.empty()) --n;  // the first token is never a target
  return n;
}

std::vector<TokenizedExample> tokenize_conversation(
    const Tokenizer& tokenizer, const ChatTemplate& chat, const Conversation& conversation,
    const TruncationOptions& truncation, bool last_reply_only, bool add_eos, bool* one_per_reply) {
  ChatTemplate::TrainingText text = chat.training_text(conversation, last_reply_only);
  if (one_per_reply) *one_per_reply = text.one_per_reply;
  std::vector<TokenizedExample> out;
  for (const ChatTemplate::Sequence& sequence : text.sequences) {
    out.push_back(tokenize_sequence(tokenizer, chat, sequence, truncation, add_eos));
  }
  return out;
}

TokenizedExample tokenize_reply(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                const Conversation& prompt, std::string_view reply,
                                const TruncationOptions& truncation, bool add_eos) {
  Conversation conversation = prompt;
  conversation.push_back({"assistant", std::string(reply)});
  ChatTemplate::TrainingText text = chat.training_text(conversation, /*last_reply_only=*/true);
  RLAIF_CHECK(text.sequences.size() == 1, "tokenize: one reply gave ", text.sequences.size(),
              " sequences");
  return tokenize_sequence(tokenizer, chat, text.sequences[0], truncation, add_eos);
}

TokenizedExample tokenize_example(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                  std::string_view prompt, std::string_view completion,
                                  const TruncationOptions& truncation, bool add_eos) {
  return tokenize_reply(tokenizer, chat, {{"user", std::string(prompt)}}, completion, truncation,
                        add_eos);
}

namespace {

std::vector<int32_t> prompt_tokens(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                   const std::string& text, int64_t max_prompt_length) {
  std::vector<int32_t> out;
  if (adds_bos(tokenizer, chat)) out.push_back(tokenizer.bos_id());
  const std::vector<int32_t> body = tokenizer.encode(text, false);
  out.insert(out.end(), body.begin(), body.end());
  std::vector<uint8_t> no_flags;
  cut_left(out, no_flags, max_prompt_length, tokenizer.bos_id());
  return out;
}

}  // namespace

std::vector<int32_t> tokenize_prompt(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                     std::string_view prompt, int64_t max_prompt_length) {
  return prompt_tokens(tokenizer, chat, chat.apply(prompt), max_prompt_length);
}

std::vector<int32_t> tokenize_prompt(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                     const Conversation& prompt, int64_t max_prompt_length) {
  return prompt_tokens(tokenizer, chat, chat.render_prompt(prompt), max_prompt_length);
}

namespace {

struct Rows {
  std::vector<int32_t> ids, pos, seg, targets;
  std::vector<float> mask;
  std::vector<int64_t> lengths;
  int64_t trained = 0;
};

// Appends one example at offset `at` of row `row` (width T) as segment `segment`.
void place(Rows& r, const TokenizedExample& ex, int64_t row, int64_t at, int64_t T,
           int32_t segment) {
  const int64_t P = static_cast<int64_t>(ex.prompt.size());
  const int64_t L = std::min<int64_t>(P + static_cast<int64_t>(ex.completion.size()), T - at);
  auto token = [&](int64_t i) {
    return i < P ? ex.prompt[static_cast<size_t>(i)] : ex.completion[static_cast<size_t>(i - P)];
  };
  for (int64_t i = 0; i < L; ++i) {
    size_t k = static_cast<size_t>(row * T + at + i);
    r.ids[k] = token(i);
    r.pos[k] = static_cast<int32_t>(i);
    r.seg[k] = segment;
    // Position i predicts token i+1, trained when that token is part of the completion or a
    // flagged prompt token.
    const bool trained =
        i + 1 >= P || (!ex.prompt_trained.empty() && ex.prompt_trained[static_cast<size_t>(i + 1)]);
    if (i + 1 < L && trained) {
      r.targets[k] = token(i + 1);
      r.mask[k] = 1.0f;
      ++r.trained;
    }
  }
}

SequenceBatch finish(Rows& r, int64_t B, int64_t T, Device device) {
  SequenceBatch b;
  b.input.ids = Tensor::from_vector(r.ids, {B, T}).to(device);
  b.input.positions = Tensor::from_vector(r.pos, {B, T}).to(device);
  b.input.segment_ids = Tensor::from_vector(r.seg, {B, T}).to(device);
  b.targets = Tensor::from_vector(r.targets, {B, T}).to(device);
  b.completion_mask = Tensor::from_vector(r.mask, {B, T}).to(device);
  b.lengths = r.lengths;
  b.trained_tokens = r.trained;
  return b;
}

Rows empty_rows(int64_t B, int64_t T, int32_t pad_id) {
  Rows r;
  const size_t n = static_cast<size_t>(B * T);
  r.ids.assign(n, pad_id);
  r.pos.assign(n, 0);
  r.seg.assign(n, -1);  // padding: its own segment, attended by nothing real
  r.targets.assign(n, kIgnoreIndex);
  r.mask.assign(n, 0.0f);
  return r;
}

}  // namespace

SequenceBatch make_batch(const std::vector<TokenizedExample>& examples, Device device,
                         int32_t pad_id) {
  RLAIF_CHECK(!examples.empty(), "make_batch: no examples");
  const int64_t B = static_cast<int64_t>(examples.size());
  int64_t T = 1;
  for (const auto& ex : examples) {
    T = std::max<int64_t>(T, static_cast<int64_t>(ex.prompt.size() + ex.completion.size()));
  }
  Rows r = empty_rows(B, T, pad_id);
  for (int64_t b = 0; b < B; ++b) {
    const auto& ex = examples[static_cast<size_t>(b)];
    place(r, ex, b, 0, T, 0);
    r.lengths.push_back(static_cast<int64_t>(ex.prompt.size() + ex.completion.size()));
  }
  return finish(r, B, T, device);
}

SequenceBatch make_packed_batch(const std::vector<TokenizedExample>& examples, int64_t row_length,
                                Device device, int32_t pad_id) {
  RLAIF_CHECK(!examples.empty(), "make_packed_batch: no examples");
  RLAIF_CHECK(row_length > 1, "make_packed_batch: row length must be > 1");
  // First pass: assign (row, offset) greedily in order.
  std::vector<std::pair<int64_t, int64_t>> where;
  int64_t row = 0, used = 0;
  for (const auto& ex : examples) {
    int64_t len = std::min<int64_t>(static_cast<int64_t>(ex.prompt.size() + ex.completion.size()),
                                    row_length);
    if (used > 0 && used + len > row_length) {
      ++row;
      used = 0;
    }
    where.emplace_back(row, used);
    used += len;
  }
  const int64_t B = row + 1;
  Rows r = empty_rows(B, row_length, pad_id);
  r.lengths.assign(static_cast<size_t>(B), 0);
  for (size_t i = 0; i < examples.size(); ++i) {
    auto [rw, at] = where[i];
    place(r, examples[i], rw, at, row_length, static_cast<int32_t>(i));
    r.lengths[static_cast<size_t>(rw)] =
        at + std::min<int64_t>(
                 static_cast<int64_t>(examples[i].prompt.size() + examples[i].completion.size()),
                 row_length - at);
  }
  return finish(r, B, row_length, device);
}

Variable completion_logprobs(const Transformer& model, const SequenceBatch& batch, bool average) {
  // Targets at untrained positions are kIgnoreIndex, which gather_logprobs rejects: replace them
  // by token 0 there (masked out below).
  Tensor targets =
      batch.targets.device().is_cpu() ? batch.targets.clone() : batch.targets.to(Device::cpu());
  int32_t* t = targets.data<int32_t>();
  for (int64_t i = 0; i < targets.numel(); ++i) t[i] = t[i] == kIgnoreIndex ? 0 : t[i];
  Variable logp = model.token_logprobs(batch.input, targets.to(model.device()));  // [B, T]
  return average ? masked_mean(logp, batch.completion_mask)
                 : masked_sum(logp, batch.completion_mask);
}

std::vector<int64_t> last_token_index(const SequenceBatch& batch) {
  std::vector<int64_t> out;
  for (int64_t b = 0; b < batch.rows(); ++b) {
    RLAIF_CHECK(batch.lengths[static_cast<size_t>(b)] > 0, "last_token_index: row ", b,
                " is empty");
    out.push_back(batch.lengths[static_cast<size_t>(b)] - 1);
  }
  return out;
}

Variable last_token_scores(const Transformer& model, const SequenceBatch& batch) {
  const int64_t B = batch.rows(), T = batch.width();
  Variable scores = model.scalar_head(model.hidden_states(batch.input));  // [B·T]
  const std::vector<int64_t> last = last_token_index(batch);
  std::vector<int32_t> rows;
  for (int64_t b = 0; b < B; ++b) {
    rows.push_back(static_cast<int32_t>(b * T + last[static_cast<size_t>(b)]));
  }
  // A row gather through embedding(), whose backward scatters the gradient back.
  Variable picked =
      embedding(reshape(scores, {B * T, 1}), Tensor::from_vector(rows, {B}).to(model.device()));
  return reshape(picked, {B});
}

}  // namespace rlaif
