#include "algorithms/rule_rewards.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <charconv>
#include <cmath>

#include "algorithms/checkable_tasks.h"
#include "io/hf_text.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_ascii_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// The canonical form of a number already known to match -?[0-9]+(\.[0-9]+)?.
std::string canonical(std::string_view sign, std::string_view integer, std::string_view fraction) {
  while (integer.size() > 1 && integer.front() == '0') integer.remove_prefix(1);
  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  std::string out;
  if (!sign.empty() && !(integer == "0" && fraction.empty())) out += '-';  // "-0" is "0"
  out += integer;
  if (!fraction.empty()) {
    out += '.';
    out += fraction;
  }
  return out;
}

// Reads a number at text[pos] (a digit, or a '-' before one); advances pos past it.
std::string read_number(std::string_view text, size_t& pos) {
  std::string_view sign;
  if (text[pos] == '-') sign = text.substr(pos++, 1);
  const size_t int_start = pos;
  while (pos < text.size() && is_digit(text[pos])) ++pos;
  std::string_view integer = text.substr(int_start, pos - int_start), fraction;
  if (pos + 1 < text.size() && text[pos] == '.' && is_digit(text[pos + 1])) {
    const size_t frac_start = ++pos;
    while (pos < text.size() && is_digit(text[pos])) ++pos;
    fraction = text.substr(frac_start, pos - frac_start);
  }
  return canonical(sign, integer, fraction);
}

std::optional<double> parse_weight(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value))
    return std::nullopt;
  return value;
}

constexpr const char* kKinds = "exact-match:COL, regex:PATTERN, number:COL, json, length:N";

}  // namespace

std::string RewardRule::column() const {
  return kind == RewardRuleKind::exact_match || kind == RewardRuleKind::number ? argument : "";
}

RewardRule parse_reward_rule(const std::string& spec) {
  RewardRule rule;
  rule.spec = spec;
  const size_t kind_end = std::min(spec.find(':'), spec.find('@'));
  const std::string kind = spec.substr(0, kind_end);
  std::string rest = kind_end == std::string::npos ? "" : spec.substr(kind_end);
  // The weight: the text after the last '@'. For a regex it is a weight only when it is a
  // number (an '@' may belong to the pattern); elsewhere it must be one.
  if (size_t at = rest.rfind('@'); at != std::string::npos) {
    const std::string weight = rest.substr(at + 1);
    std::optional<double> w = parse_weight(weight);
    if (w) {
      rule.weight = *w;
      rest.resize(at);
    } else if (kind != "regex") {
      throw Error("reward '", spec, "': the weight after '@' must be a finite number, got '",
                  weight, "'");
    }
  }
  const bool has_argument = !rest.empty() && rest.front() == ':';
  const std::string argument = has_argument ? rest.substr(1) : "";
  RLAIF_CHECK(rest.empty() || has_argument, "reward '", spec,
              "': expected KIND[:ARGUMENT][@WEIGHT]");
  if (kind == "exact-match") {
    rule.kind = RewardRuleKind::exact_match;
  } else if (kind == "regex") {
    rule.kind = RewardRuleKind::regex;
  } else if (kind == "number") {
    rule.kind = RewardRuleKind::number;
  } else if (kind == "json") {
    rule.kind = RewardRuleKind::json;
  } else if (kind == "length") {
    rule.kind = RewardRuleKind::length;
  } else {
    throw Error("reward '", spec, "': unknown kind '", kind, "' (the kinds: ", kKinds, ")");
  }
  rule.argument = argument;
  switch (rule.kind) {
    case RewardRuleKind::exact_match:
    case RewardRuleKind::number:
      RLAIF_CHECK(!argument.empty(), "reward '", spec, "': ", kind,
                  " needs the column to compare with, e.g. ", kind, ":answer");
      break;
    case RewardRuleKind::regex:
      RLAIF_CHECK(!argument.empty(), "reward '", spec,
                  "': regex needs a pattern, e.g. regex:^[a-z]+$");
      rule.re = std::make_shared<const hf::Regex>(argument, "reward '" + spec + "'",
                                                  hf::Regex::Syntax::pcre2);
      break;
    case RewardRuleKind::json:
      RLAIF_CHECK(!has_argument, "reward '", spec, "': json takes no argument");
      break;
    case RewardRuleKind::length: {
      int64_t n = 0;
      auto [end, ec] = std::from_chars(argument.data(), argument.data() + argument.size(), n);
      RLAIF_CHECK(ec == std::errc() && end == argument.data() + argument.size() && n >= 1,
                  "reward '", spec,
                  "': length needs a positive number of characters, e.g. "
                  "length:64");
      rule.length_limit = n;
      break;
    }
  }
  return rule;
}

std::vector<std::string> numbers_in(std::string_view text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const char c = text[pos];
    const bool sign = c == '-' && pos + 1 < text.size() && is_digit(text[pos + 1]) &&
                      (pos == 0 || !(is_digit(text[pos - 1]) || is_ascii_letter(text[pos - 1])));
    if (is_digit(c) || sign) {
      out.push_back(read_number(text, pos));
    } else {
      ++pos;
    }
  }
  return out;
}

std::optional<std::string> canonical_number(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return std::nullopt;
  text = text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
  size_t pos = 0;
  if (!(is_digit(text[0]) || (text[0] == '-' && text.size() > 1 && is_digit(text[1]))))
    return std::nullopt;
  std::string number = read_number(text, pos);
  if (pos != text.size()) return std::nullopt;
  return number;
}

int64_t code_points(std::string_view text) {
  int64_t n = 0;
  for (size_t pos = 0; pos < text.size(); ++n) {
    const auto lead = static_cast<unsigned char>(text[pos]);
    if (lead < 0x80) {
      ++pos;
      continue;
    }
    const hf::Utf8Sequence seq = hf::utf8_sequence_at(text, pos);
    pos += seq.length != 0 && seq.valid == seq.length ? seq.length : 1;
  }
  return n;
}

double exact_match_reward(std::string_view completion, std::string_view reference) {
  return exact_match(std::string(completion), std::string(reference)) ? 1.0 : 0.0;
}

double regex_reward(std::string_view completion, const hf::Regex& re) {
  if (hf::is_valid_utf8(completion)) return re.matches_somewhere(completion) ? 1.0 : 0.0;
  return re.matches_somewhere(hf::replace_invalid_utf8(completion)) ? 1.0 : 0.0;
}

double number_reward(std::string_view completion, std::string_view reference_number) {
  const std::vector<std::string> numbers = numbers_in(completion);
  const std::optional<std::string> reference = canonical_number(reference_number);
  RLAIF_CHECK(reference.has_value(), "number reward: '", reference_number, "' is not a number");
  return !numbers.empty() && numbers.back() == *reference ? 1.0 : 0.0;
}

double json_reward(std::string_view completion) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(
      completion.data(), completion.size());
  return doc.HasParseError() ? 0.0 : 1.0;
}

double length_reward(std::string_view completion, int64_t limit) {
  RLAIF_CHECK(limit >= 1, "length reward: the limit must be at least 1, got ", limit);
  const int64_t over = code_points(completion) - limit;
  return over > 0 ? -static_cast<double>(over) / static_cast<double>(limit) : 0.0;
}

RuleReward::RuleReward(std::vector<RewardRule> rules, PromptColumns columns)
    : rules_(std::move(rules)), columns_(std::move(columns)) {
  RLAIF_CHECK(!rules_.empty(), "rule reward: no rules");
  for (const RewardRule& rule : rules_) {
    const std::string column = rule.column();
    if (column.empty()) continue;
    for (const PromptRecord& record : columns_.records()) {
      const std::string text = PromptColumns::text(record, column);  // Error when absent
      RLAIF_CHECK(rule.kind != RewardRuleKind::number || canonical_number(text).has_value(),
                  record.where, ": column \"", column, "\" holds '", text, "', not a number (",
                  rule.spec, " compares numbers: -?[0-9]+(.[0-9]+)?)");
    }
  }
}

double RuleReward::rule_score(size_t k, const std::string& prompt,
                              const std::string& completion) const {
  const RewardRule& rule = rules_.at(k);
  switch (rule.kind) {
    case RewardRuleKind::exact_match:
      return exact_match_reward(completion, columns_.text(prompt, rule.argument));
    case RewardRuleKind::regex:
      return regex_reward(completion, *rule.re);
    case RewardRuleKind::number:
      return number_reward(completion, columns_.text(prompt, rule.argument));
    case RewardRuleKind::json:
      return json_reward(completion);
    case RewardRuleKind::length:
      return length_reward(completion, rule.length_limit);
  }
  return 0.0;
}

std::vector<double> RuleReward::score(const std::vector<std::string>& prompts,
                                      const std::vector<std::string>& completions) {
  RLAIF_CHECK(prompts.size() == completions.size(), "rule reward: ", prompts.size(),
              " prompts but ", completions.size(), " completions");
  std::vector<double> scores(prompts.size(), 0.0);
  for (size_t i = 0; i < prompts.size(); ++i) {
    columns_.record(prompts[i]);  // Error naming the file for a prompt it lacks
    for (size_t k = 0; k < rules_.size(); ++k) {
      scores[i] += rules_[k].weight * rule_score(k, prompts[i], completions[i]);
    }
  }
  return scores;
}

}  // namespace rlaif
