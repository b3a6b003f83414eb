// The LLM critic's prompts and the strict parsing of its answers.
//
// Two kinds of judgment:
// - pairwise (AlpacaEval-style): given an instruction and two outputs, the critic answers
//   "Output (a)" or "Output (b)". Placeholders: {instruction}, {output_1} (shown as (a)) and
//   {output_2} (shown as (b)).
// - rating (for PPO's reward): given an instruction and one output, the critic answers an
//   integer from 1 to 10. Placeholders: {instruction}, {output}.
//
// Parsing is strict on purpose: an answer that is not exactly one of the accepted forms is
// "unparsed" and recorded as such, never guessed at (a critic that rambles is a critic that is
// not doing the task, and guessing would hide that). A reasoning model's leading
// <think>...</think> block is set aside first (an answer cut off inside it is unparsed); then are
// accepted, after trimming whitespace, case-insensitively, with at most one trailing '.':
//   pairwise: "Output (a)", "(a)", "a" (and the same for b)
//   rating:   "Rating: N", "N" with N an integer from 1 to 10
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/llm_client.h"

namespace rlaif {

// The output a pairwise answer prefers, as shown to the critic: (a) is {output_1}.
enum class PairVerdict { a, b, unparsed };

PairVerdict parse_pairwise_answer(std::string_view answer);
// The rating 1..10, or nullopt when the answer is not one.
std::optional<int> parse_rating_answer(std::string_view answer);
const char* pair_verdict_name(PairVerdict v);  // "a", "b", "unparsed"

// What a pairwise judgment of outputs X and Y says about X: `first` when every answer prefers X,
// `second` when every answer prefers Y, `tie` when the answers disagree (asked in both orders,
// that is position bias), `unparsed` when any answer is.
enum class PairOutcome { first, second, tie, unparsed };
const char* pair_outcome_name(PairOutcome o);  // "first", "second", "tie", "unparsed"

// For judgments asked in one order only: whether to show the pair (X, Y) swapped, Y as (a). A
// fixed hash (FNV-1a) of both texts decides, so about half the pairs are swapped (position bias
// favours neither side), and a re-run asks the same requests (the cache answers them).
bool show_swapped(std::string_view x, std::string_view y);

// A win rate over judged items, each scoring 1 (win), 0.5 (tie) or 0 (loss): the mean score and
// its standard error, the sample standard deviation of the scores over sqrt(n). NaN where
// undefined (mean with no items, standard error with fewer than two).
struct WinRate {
  int64_t n = 0;
  double mean = 0;
  double standard_error = 0;
};
WinRate win_rate(const std::vector<double>& scores);

// Replaces every {name} of `text` that `values` lists by its value, in one left-to-right pass:
// substituted text is never scanned again (an instruction holding "{output_1}" stays as it is),
// and braces that name nothing in `values` are copied verbatim.
std::string fill_template(std::string_view text,
                          const std::vector<std::pair<std::string, std::string>>& values);

class JudgeTemplate {
 public:
  enum class Kind { pairwise, rating };

  // The built-in templates (with a system message).
  static JudgeTemplate default_pairwise();
  static JudgeTemplate default_rating();
  // A template file: its whole text is the user message (no system message), less the newline
  // that ends its last line. Error naming the file when it cannot be read or lacks one of its
  // kind's placeholders.
  static JudgeTemplate from_file(Kind kind, const std::string& path);
  // Error naming `where` when `user` lacks one of the kind's placeholders.
  JudgeTemplate(Kind kind, std::string user, std::string system, const std::string& where);

  // The critic's request (temperature 0, max_tokens()), `item` naming it in errors.
  CompletionRequest pairwise_request(const std::string& instruction, const std::string& output_1,
                                     const std::string& output_2, const std::string& item) const;
  CompletionRequest rating_request(const std::string& instruction, const std::string& output,
                                   const std::string& item) const;

  Kind kind() const { return kind_; }
  const std::string& user() const { return user_; }
  const std::string& system() const { return system_; }
  // Tokens the critic may write: the accepted answers are a few tokens long.
  int64_t max_tokens() const { return max_tokens_; }
  void set_max_tokens(int64_t n) { max_tokens_ = n; }

 private:
  CompletionRequest request(std::string user_message, const std::string& item) const;

  Kind kind_;
  std::string user_, system_;
  int64_t max_tokens_ = 16;
};

// The critic's requests for judging X against Y: with both_orders two, X as (a) then Y as (a);
// otherwise one, Y as (a) when show_swapped(x, y). `x_as_a` receives, per request, whether X
// was shown as (a). `item` names the requests in errors.
std::vector<CompletionRequest> pair_requests(const JudgeTemplate& judge,
                                             const std::string& instruction, const std::string& x,
                                             const std::string& y, bool both_orders,
                                             const std::string& item, std::vector<bool>& x_as_a);
// The outcome for X of the answers to pair_requests() (raw text, parsed strictly).
PairOutcome pair_outcome(const std::vector<std::string>& answers, const std::vector<bool>& x_as_a);

}  // namespace rlaif
