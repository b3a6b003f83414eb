#include "algorithms/checkable_tasks.h"

#include <algorithm>
#include <string_view>

#include "io/judge.h"

namespace rlaif {
namespace {

std::string join_letters(const std::vector<char>& letters) {
  std::string s;
  for (size_t i = 0; i < letters.size(); ++i) {
    if (i) s += ' ';
    s += letters[i];
  }
  return s;
}

std::vector<char> split_letters(const std::string& text) {
  std::vector<char> letters;
  for (char c : text) {
    if (c != ' ') letters.push_back(c);
  }
  return letters;
}

std::string_view trimmed(std::string_view s) {
  const size_t first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const size_t last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

}  // namespace

const char* const kCompactPairwiseTemplate =
    "Which output follows the instruction correctly?\n"
    "Instruction: {instruction}\n"
    "Output (a): {output_1}\n"
    "Output (b): {output_2}";

uint64_t CheckableTaskGenerator::next_u64() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t CheckableTaskGenerator::below(uint64_t n) {
  return next_u64() % n;  // n is tiny: the modulo bias is below 1e-17
}

CheckableTask CheckableTaskGenerator::next() {
  const uint64_t family = below(3);
  if (family == 2) {
    const uint64_t a = below(100), b = below(100);
    return {"add", "What is " + std::to_string(a) + " + " + std::to_string(b) + "?",
            std::to_string(a + b)};
  }
  std::vector<char> letters(3 + below(3));
  for (char& c : letters) c = static_cast<char>('a' + below(26));
  const std::string shown = join_letters(letters);
  if (family == 0) {
    const std::vector<char> reversed(letters.rbegin(), letters.rend());
    return {"reverse", "Reverse the letters " + shown + ".", join_letters(reversed)};
  }
  std::sort(letters.begin(), letters.end());
  return {"sort", "Sort the letters " + shown + ".", join_letters(letters)};
}

std::string CheckableTaskGenerator::wrong_answer(const CheckableTask& task) {
  for (int attempt = 0; attempt < 32; ++attempt) {
    std::string wrong;
    if (below(4) == 0) {  // unrelated: another answer of the same form
      if (task.family == "add") {
        wrong = std::to_string(below(199));
      } else {
        std::vector<char> letters = split_letters(task.answer);
        for (char& c : letters) c = static_cast<char>('a' + below(26));
        wrong = join_letters(letters);
      }
    } else if (task.family == "add") {
      static const int kOffsets[] = {-10, -2, -1, 1, 2, 10};
      const int64_t v = std::stoll(task.answer) + kOffsets[below(6)];
      wrong = std::to_string(std::max<int64_t>(0, v));
    } else {
      std::vector<char> letters = split_letters(task.answer);
      const uint64_t kind = below(3);
      if (letters.size() < 2) continue;  // not a generated answer: words have 3 letters or more
      if (kind == 0) {                   // two neighbours swapped
        const size_t i = below(letters.size() - 1);
        const char first = letters[i];
        letters[i] = letters[i + 1];
        letters[i + 1] = first;
      } else if (kind == 1) {  // the letters as given, not reversed or sorted
        const std::string prefix =
            task.family == "reverse" ? "Reverse the letters " : "Sort the letters ";
        letters = split_letters(
            task.prompt.substr(prefix.size(), task.prompt.size() - prefix.size() - 1));
      } else {  // one letter changed
        letters[below(letters.size())] = static_cast<char>('a' + below(26));
      }
      wrong = join_letters(letters);
    }
    if (wrong != task.answer) return wrong;
  }
  return task.answer + (task.family == "add" ? "0" : " a");  // always differs
}

std::string compact_pairwise_prompt(const std::string& instruction, const std::string& output_1,
                                    const std::string& output_2) {
  return fill_template(
      kCompactPairwiseTemplate,
      {{"instruction", instruction}, {"output_1", output_1}, {"output_2", output_2}});
}

std::string critic_answer(const CheckableTask& task, const std::string& output_1,
                          const std::string& output_2) {
  // Letters are compared letter by letter, sums digit by digit.
  auto tokens = [&](const std::string& s) {
    std::vector<std::string> out;
    if (task.family == "add") {
      for (char c : s) out.emplace_back(1, c);
    } else {
      for (char c : split_letters(s)) out.emplace_back(1, c);
    }
    return out;
  };
  const std::vector<std::string> right = tokens(task.answer);
  std::string text = "<think>";
  for (const auto& [name, output] :
       {std::pair<const char*, const std::string*>{"(a)", &output_1}, {"(b)", &output_2}}) {
    const std::vector<std::string> given = tokens(*output);
    text += std::string(name == std::string("(a)") ? "" : " ") + name;
    for (size_t i = 0; i < std::max(right.size(), given.size()); ++i) {
      const std::string r = i < right.size() ? right[i] : "_",
                        g = i < given.size() ? given[i] : "_";
      text += " " + r + g + (r == g ? "=" : "!");
    }
  }
  return text + "</think>" + (output_1 == task.answer ? "Output (a)" : "Output (b)");
}

bool exact_match(const std::string& completion, const std::string& reference) {
  return trimmed(completion) == trimmed(reference);
}

}  // namespace rlaif
