// Rewards computed by rules, for reinforcement learning on tasks whose answers can be checked
// (the verifiable rewards of RLVR: Lambert et al. 2024, "Tülu 3"; DeepSeek-AI 2025, "DeepSeek-R1";
// TRL's GRPOTrainer takes such functions as reward_funcs). Each rule maps a completion y of a
// prompt x, whose dataset record has columns c(x), to a number; rules combine with weights:
//
//   R(x, y) = Σ_k w_k · r_k(x, y)
//
// The rules (a rule is written KIND[:ARGUMENT][@WEIGHT], weight 1 by default):
//   exact-match:COL  r = 1 if trim(y) = trim(c(x)[COL]) else 0, where trim drops the spaces, tabs,
//                    CRs and newlines around a text (the checker of algorithms/checkable_tasks.h).
//                    trim("a b d \n") = "a b d" = trim("a b d") → 1; "a b  d" ≠ "a b d" → 0.
//   regex:PATTERN    r = 1 if the PCRE2 pattern matches somewhere in y (UTF and Unicode
//                    properties on; anchor it with ^...$ to match the whole completion) else 0.
//                    regex:^[a-z]( [a-z])*$ on "a b d" → 1, on "a b d." → 0.
//   number:COL       r = 1 if the last number in y equals the number c(x)[COL] else 0 (0 when y
//                    has no number). A number is an optional minus sign, ASCII digits, and
//                    optionally a point followed by digits: -?[0-9]+(\.[0-9]+)?. No plus sign,
//                    exponent or thousands separator ("1,234" holds the numbers 1 and 234). A
//                    minus is a sign only when no letter or digit stands right before it ("3-2"
//                    holds 3 and 2; "x = -2" holds -2). Numbers are equal when their values
//                    are: "71" = "071" = "71.0"; "-0" = "0". "The sum is 7.5." → 7.5.
//                    The column holds a JSON number or a string that is one number.
//   json             r = 1 if y, surrounding whitespace aside, is one JSON value (RFC 8259:
//                    objects, arrays, strings, numbers, true, false, null) in valid UTF-8, else 0.
//                    {"a": [1, 2]} → 1; {"a": 1,} → 0; "" → 0.
//   length:N         r = -max(0, n - N) / N, where n counts the Unicode code points of y (a
//                    malformed UTF-8 byte counts as one): 0 up to N, -1 at 2N, linear beyond.
//                    N = 4: "abcdef" → -(6 - 4)/4 = -0.5; "éééééé" (12 bytes) → -0.5 too.
// A weight is any finite number (negative weights turn a rule into a penalty). The weight of a
// regex is the text after its last '@' when that text is a number: regex:a@b keeps "a@b" as the
// pattern; to match "x@2" write regex:x@2@1.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "algorithms/prompt_columns.h"
#include "algorithms/reward_function.h"

namespace rlaif {

namespace hf {
class Regex;
}

enum class RewardRuleKind { exact_match, regex, number, json, length };

struct RewardRule {
  RewardRuleKind kind = RewardRuleKind::json;
  std::string argument;  // the column, the pattern, or N as text
  double weight = 1.0;
  int64_t length_limit = 0;             // length:N
  std::shared_ptr<const hf::Regex> re;  // regex:PATTERN, compiled
  std::string spec;                     // as written
  // The column the rule reads, or "".
  std::string column() const;
};

// Parses KIND[:ARGUMENT][@WEIGHT]. Error "reward 'SPEC': ..." for an unknown kind (listing the
// kinds), a missing or unexpected argument, a weight that is not a finite number, N that is not
// a positive integer, and a pattern PCRE2 rejects (naming the offset in the pattern).
RewardRule parse_reward_rule(const std::string& spec);

// The rules on their own, on one completion (the known answers above).
double exact_match_reward(std::string_view completion, std::string_view reference);
double regex_reward(std::string_view completion, const hf::Regex& re);
double number_reward(std::string_view completion, std::string_view reference_number);
double json_reward(std::string_view completion);
double length_reward(std::string_view completion, int64_t limit);

// The numbers of `text` by the definition above, each in canonical form: no leading zeros, no
// trailing zeros after the point (and no point left bare), "-0" as "0". "x -007.50, 3-2" →
// {"-7.5", "3", "2"}.
std::vector<std::string> numbers_in(std::string_view text);
// `text` (surrounding whitespace aside) as one canonical number, or nullopt when it is not one.
std::optional<std::string> canonical_number(std::string_view text);
// Unicode code points of UTF-8 text (a malformed byte counts as one).
int64_t code_points(std::string_view text);

// The weighted sum R above over the rules, each rule's column read from the record of the prompt
// (PromptColumns). A rule that reads a column checks at construction that every record has it
// (and, for number:COL, that it is a number): Error naming the record (PATH:LINE) and the column.
class RuleReward : public RewardFunction {
 public:
  RuleReward(std::vector<RewardRule> rules, PromptColumns columns);
  // Error naming the file for a prompt no record has.
  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& completions) override;

  // The score of one pair under rule k alone (unweighted).
  double rule_score(size_t k, const std::string& prompt, const std::string& completion) const;
  const std::vector<RewardRule>& rules() const { return rules_; }

 private:
  std::vector<RewardRule> rules_;
  PromptColumns columns_;
};

}  // namespace rlaif
