// StreamingText (io/streaming_text.h) with real tokenizers, GPT-2's byte-level BPE (characters
// split over several tokens) and stories260K's SentencePiece (a leading space that depends on
// the prompt): fed one token at a time, its pieces add up to finish_completion's text of the
// whole generation, every piece is whole UTF-8 characters, and text that could begin a stop
// string is held back until it is ruled out.
#include "io/streaming_text.h"

#include <gtest/gtest.h>

#include "io/openai_protocol.h"
#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80             ? 1
                     : (c & 0xE0) == 0xC0 ? 2
                     : (c & 0xF0) == 0xE0 ? 3
                     : (c & 0xF8) == 0xF0 ? 4
                                          : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

// What finish_completion's text would be without stop strings, for stopped()'s expectation.
size_t decode_text(const Tokenizer& tok, const Generation& g, const std::vector<int32_t>& prompt,
                   bool continue_prompt) {
  return finish_completion(tok, g, prompt, continue_prompt, {}, false).text.size();
}

// Streams `text`'s tokens as a generation of `prompt_text` and checks the pieces against
// finish_completion. Returns the pieces.
std::vector<std::string> stream(const Tokenizer& tok, const std::string& prompt_text,
                                const std::string& text, const std::vector<std::string>& stop,
                                bool continue_prompt, bool eos) {
  std::vector<int32_t> prompt = tok.encode(prompt_text, true);
  const std::vector<int32_t> ids = tok.encode(text, false);
  Generation whole{ids, eos};
  if (eos) whole.tokens.push_back(tok.eos_id());
  const ApiCompletion want = finish_completion(tok, whole, prompt, continue_prompt, stop, false);

  StreamingText streaming(tok, prompt, continue_prompt, stop);
  std::vector<std::string> pieces;
  std::string joined;
  Generation so_far;
  for (size_t k = 0; k < whole.tokens.size(); ++k) {
    so_far.tokens.push_back(whole.tokens[k]);
    const bool last = k + 1 == whole.tokens.size();
    so_far.stopped_at_eos = last && eos;
    const std::string piece = streaming.advance(so_far, last);
    EXPECT_TRUE(valid_utf8(piece)) << "piece " << pieces.size() << " of '" << text << "'";
    pieces.push_back(piece);
    joined += piece;
    if (streaming.stopped()) break;
  }
  EXPECT_EQ(joined, want.text) << "'" << text << "' continue_prompt " << continue_prompt;
  EXPECT_EQ(streaming.sent(), want.text);
  EXPECT_EQ(streaming.stopped(),
            want.text.size() < decode_text(tok, whole, prompt, continue_prompt))
      << "'" << text << "'";
  return pieces;
}

TEST(StreamingText, PiecesAddUpToTheCompletionWithByteLevelBpe) {
  const Tokenizer tok = Tokenizer::load_dir(test::data_path("tokenizers/gpt2"));
  for (const std::string text :
       {"Hello there, world.", "Caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9",
        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E and \xF0\x9F\x99\x82 ok",
        "Thought: x\nObservation: y\n\nDone"}) {
    for (bool eos : {false, true}) {
      stream(tok, "Q: ", text, {}, false, eos);
      stream(tok, "Q: ", text, {"\n\n", "Observation:"}, false, eos);
      stream(tok, "Q: ", text, {"\xE6\x9C\xAC\xE8\xAA\x9E", "\xF0\x9F\x99\x82"}, true, eos);
    }
  }
  // A 4-byte character split over byte tokens: no piece holds part of it.
  const std::vector<std::string> pieces =
      stream(tok, "", "\xF0\x9F\x99\x82\xF0\x9F\x99\x82", {}, false, false);
  EXPECT_GT(pieces.size(), 2u);  // several tokens, some of them empty pieces
}

TEST(StreamingText, PiecesAddUpToTheCompletionWithSentencePiece) {
  const Tokenizer tok = Tokenizer::load(test::data_path("models/stories260K/tokenizer.model"));
  for (const std::string text :
       {"Once upon a time, there was a cat.", "Lily said: stop. Then she ran"}) {
    for (bool continue_prompt : {false, true}) {
      stream(tok, "Tell a story.", text, {}, continue_prompt, true);
      stream(tok, "Tell a story.", text, {"stop", "cat"}, continue_prompt, false);
    }
  }
}

TEST(StreamingText, HoldsBackWhatCouldBeginAStopString) {
  const Tokenizer tok = Tokenizer::load_dir(test::data_path("tokenizers/gpt2"));
  StreamingText streaming(tok, {}, false, {"Observation:"});
  Generation g;
  std::string sent;
  for (int32_t id : tok.encode("Answer: 4. Obs", false)) {
    g.tokens.push_back(id);
    sent += streaming.advance(g, false);
  }
  EXPECT_EQ(sent, "Answer: 4. ");  // "Obs" may begin "Observation:"
  for (int32_t id : tok.encode("ervation: none", false)) {
    g.tokens.push_back(id);
    sent += streaming.advance(g, false);
  }
  EXPECT_EQ(sent, "Answer: 4. ");
  EXPECT_TRUE(streaming.stopped());
  EXPECT_EQ(streaming.advance(g, true), "");  // nothing after the stop string

  StreamingText ruled_out(tok, {}, false, {"Observation:"});
  Generation h;
  std::string all;
  for (int32_t id : tok.encode("Obstacles ahead", false)) {
    h.tokens.push_back(id);
    all += ruled_out.advance(h, false);
  }
  EXPECT_EQ(all, "Obstacles ahead");
  EXPECT_FALSE(ruled_out.stopped());
}

}  // namespace
}  // namespace rlaif
