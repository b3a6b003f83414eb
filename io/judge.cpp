#include "io/judge.h"

#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "runtime/error.h"
#include "runtime/fnv1a.h"

namespace rlaif {
namespace {

// After AlpacaEval's pairwise annotator prompt: a worked example, then the task, and an answer
// restricted to the two forms the parser accepts.
constexpr std::string_view kPairwiseSystem =
    "You are a helpful assistant that ranks models by the quality of their answers.";
constexpr std::string_view kPairwiseUser =
    "Select the output (a) or (b) that best matches the given instruction. Choose your preferred "
    "output, which can be subjective. Your answer should ONLY contain: Output (a) or Output (b). "
    "Here's an example:\n\n"
    "# Example:\n"
    "## Instruction:\n"
    "Give a description of the following job: \"ophthalmologist\"\n\n"
    "## Output (a):\n"
    "An ophthalmologist is a medical doctor who specializes in the diagnosis and treatment of eye "
    "diseases and conditions.\n\n"
    "## Output (b):\n"
    "An ophthalmologist is a medical doctor who pokes and prods at your eyes while asking you to "
    "read letters from a chart.\n\n"
    "## Which is best, Output (a) or Output (b)?\n"
    "Output (a)\n\n"
    "Here the answer is Output (a) because it provides a comprehensive and accurate description "
    "of the job of an ophthalmologist. In contrast, output (b) is more of a joke.\n\n"
    "# Task:\n"
    "Now is the real task, do not explain your answer, just say Output (a) or Output (b).\n\n"
    "## Instruction:\n"
    "{instruction}\n\n"
    "## Output (a):\n"
    "{output_1}\n\n"
    "## Output (b):\n"
    "{output_2}\n\n"
    "## Which is best, Output (a) or Output (b)?\n";

constexpr std::string_view kRatingSystem =
    "You are a helpful assistant that rates the quality of answers.";
constexpr std::string_view kRatingUser =
    "Rate how well the response follows the instruction: how helpful, correct, complete and "
    "clear it is, on a scale from 1 (useless) to 10 (excellent). Your answer should ONLY "
    "contain the rating, as: Rating: N\n\n"
    "## Instruction:\n"
    "{instruction}\n\n"
    "## Response:\n"
    "{output}\n\n"
    "## Rating (1-10):\n";

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The answer trimmed, lower-cased, without one trailing '.'.
std::string normalise(std::string_view answer) {
  std::string_view s = trim(answer);
  // A reasoning model's thinking comes first, in <think>...</think> (as DeepSeek-R1 and Qwen3
  // write it, and as servers without a reasoning parser pass it on): the verdict is what follows.
  if (s.starts_with("<think>")) {
    const size_t end = s.find("</think>");
    if (end == std::string_view::npos) return "";  // cut off while thinking: no verdict
    s = trim(s.substr(end + 8));
  }
  if (!s.empty() && s.back() == '.') s = trim(s.substr(0, s.size() - 1));
  return lower(s);
}

std::vector<std::string> placeholders(JudgeTemplate::Kind kind) {
  if (kind == JudgeTemplate::Kind::pairwise) return {"{instruction}", "{output_1}", "{output_2}"};
  return {"{instruction}", "{output}"};
}

}  // namespace

PairVerdict parse_pairwise_answer(std::string_view answer) {
  const std::string s = normalise(answer);
  if (s == "output (a)" || s == "(a)" || s == "a") return PairVerdict::a;
  if (s == "output (b)" || s == "(b)" || s == "b") return PairVerdict::b;
  return PairVerdict::unparsed;
}

std::optional<int> parse_rating_answer(std::string_view answer) {
  std::string s = normalise(answer);
  if (s.rfind("rating:", 0) == 0) s = std::string(trim(std::string_view(s).substr(7)));
  if (s.empty() || s.size() > 2) return std::nullopt;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  if (s.size() == 2 && s[0] == '0') return std::nullopt;  // "07" is not a plain rating
  const int n = std::stoi(s);
  if (n < 1 || n > 10) return std::nullopt;
  return n;
}

const char* pair_verdict_name(PairVerdict v) {
  switch (v) {
    case PairVerdict::a:
      return "a";
    case PairVerdict::b:
      return "b";
    case PairVerdict::unparsed:
      break;
  }
  return "unparsed";
}

const char* pair_outcome_name(PairOutcome o) {
  switch (o) {
    case PairOutcome::first:
      return "first";
    case PairOutcome::second:
      return "second";
    case PairOutcome::tie:
      return "tie";
    case PairOutcome::unparsed:
      break;
  }
  return "unparsed";
}

bool show_swapped(std::string_view x, std::string_view y) {
  Fnv1a64 hash;
  hash.add(x);
  hash.add_byte(0);  // ("ab", "c") and ("a", "bc") hash apart
  hash.add(y);
  const uint64_t h = hash.value();
  return ((h >> 32) ^ h) & 1;
}

WinRate win_rate(const std::vector<double>& scores) {
  WinRate w;
  w.n = static_cast<int64_t>(scores.size());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (scores.empty()) return {0, nan, nan};
  double sum = 0;
  for (double s : scores) sum += s;
  w.mean = sum / static_cast<double>(w.n);
  if (w.n < 2) {
    w.standard_error = nan;
    return w;
  }
  double ss = 0;  // two passes: no cancellation
  for (double s : scores) ss += (s - w.mean) * (s - w.mean);
  w.standard_error = std::sqrt(ss / static_cast<double>(w.n - 1) / static_cast<double>(w.n));
  return w;
}

std::string fill_template(std::string_view text,
                          const std::vector<std::pair<std::string, std::string>>& values) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '{') {
      bool replaced = false;
      for (const auto& [name, value] : values) {
        const std::string_view rest = text.substr(i);
        if (rest.size() >= name.size() + 2 && rest[name.size() + 1] == '}' &&
            rest.substr(1, name.size()) == name) {
          out += value;
          i += name.size() + 2;
          replaced = true;
          break;
        }
      }
      if (replaced) continue;
    }
    out += text[i++];
  }
  return out;
}

JudgeTemplate::JudgeTemplate(Kind kind, std::string user, std::string system,
                             const std::string& where)
    : kind_(kind), user_(std::move(user)), system_(std::move(system)) {
  for (const std::string& p : placeholders(kind)) {
    RLAIF_CHECK(user_.find(p) != std::string::npos, where, ": the ",
                kind == Kind::pairwise ? "pairwise" : "rating", " judge template has no ", p,
                " placeholder");
  }
}

JudgeTemplate JudgeTemplate::default_pairwise() {
  return JudgeTemplate(Kind::pairwise, std::string(kPairwiseUser), std::string(kPairwiseSystem),
                       "the default pairwise template");
}

JudgeTemplate JudgeTemplate::default_rating() {
  return JudgeTemplate(Kind::rating, std::string(kRatingUser), std::string(kRatingSystem),
                       "the default rating template");
}

JudgeTemplate JudgeTemplate::from_file(Kind kind, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RLAIF_CHECK(in.good(), "cannot open judge template ", path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  // The newline that ends a text file's last line is not part of the message.
  if (text.ends_with("\r\n"))
    text.resize(text.size() - 2);
  else if (text.ends_with("\n"))
    text.pop_back();
  return JudgeTemplate(kind, text, "", path);
}

CompletionRequest JudgeTemplate::request(std::string user_message, const std::string& item) const {
  CompletionRequest r;
  if (!system_.empty()) r.messages.push_back({"system", system_});
  r.messages.push_back({"user", std::move(user_message)});
  r.temperature = 0.0;
  r.max_tokens = max_tokens_;
  r.item = item;
  return r;
}

CompletionRequest JudgeTemplate::pairwise_request(const std::string& instruction,
                                                  const std::string& output_1,
                                                  const std::string& output_2,
                                                  const std::string& item) const {
  RLAIF_CHECK(kind_ == Kind::pairwise, item, ": a rating template cannot judge a pair");
  return request(
      fill_template(user_,
                    {{"instruction", instruction}, {"output_1", output_1}, {"output_2", output_2}}),
      item);
}

CompletionRequest JudgeTemplate::rating_request(const std::string& instruction,
                                                const std::string& output,
                                                const std::string& item) const {
  RLAIF_CHECK(kind_ == Kind::rating, item, ": a pairwise template cannot rate one output");
  return request(fill_template(user_, {{"instruction", instruction}, {"output", output}}), item);
}

std::vector<CompletionRequest> pair_requests(const JudgeTemplate& judge,
                                             const std::string& instruction, const std::string& x,
                                             const std::string& y, bool both_orders,
                                             const std::string& item, std::vector<bool>& x_as_a) {
  std::vector<CompletionRequest> requests;
  if (both_orders) {
    requests.push_back(judge.pairwise_request(instruction, x, y, item + " (first as (a))"));
    requests.push_back(judge.pairwise_request(instruction, y, x, item + " (second as (a))"));
    x_as_a = {true, false};
  } else if (show_swapped(x, y)) {
    requests.push_back(judge.pairwise_request(instruction, y, x, item));
    x_as_a = {false};
  } else {
    requests.push_back(judge.pairwise_request(instruction, x, y, item));
    x_as_a = {true};
  }
  return requests;
}

PairOutcome pair_outcome(const std::vector<std::string>& answers, const std::vector<bool>& x_as_a) {
  RLAIF_CHECK(!answers.empty() && answers.size() == x_as_a.size(), "pair_outcome: ", answers.size(),
              " answers for ", x_as_a.size(), " requests");
  size_t for_x = 0;
  for (size_t i = 0; i < answers.size(); ++i) {
    const PairVerdict v = parse_pairwise_answer(answers[i]);
    if (v == PairVerdict::unparsed) return PairOutcome::unparsed;
    for_x += (v == PairVerdict::a) == x_as_a[i];
  }
  if (for_x == answers.size()) return PairOutcome::first;
  if (for_x == 0) return PairOutcome::second;
  return PairOutcome::tie;
}

}  // namespace rlaif
