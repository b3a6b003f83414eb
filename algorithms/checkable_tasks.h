// Instruction tasks whose answers can be checked exactly, for experiments where a teacher's,
// a critic's and a student's quality must be measured rather than guessed: the offline
// miniature of the seed paper's experiment trains small teachers, critics and students on them.
//
// Families (letters are single lower-case letters separated by spaces, so that each is a token
// of its own for small tokenizers):
//   reverse: "Reverse the letters k v q a."  →  "a q v k"
//   sort:    "Sort the letters k v q a."     →  "a k q v"
//   add:     "What is 23 + 48?"              →  "71"
// Words have 3 to 5 letters; addends are 0..99. The answer is a function of the prompt alone,
// so exact match against it (after trimming surrounding whitespace) is the checker.
//
// Critic examples follow the seed paper's pairwise format (the verdict is "Output (a)" or
// "Output (b)"), reasoning first as reasoning models do, in a <think> block that the judge's
// parser sets aside (io/judge.h). The reasoning checks each output against the right answer
// position by position: the right token, the output's token, and "=" where they agree or "!"
// where they differ ("_" stands for a missing token), e.g. for the right answer "a q v k":
//   "<think>(a) aa= qq= vv= kk= (b) aa= qv! vq! kk=</think>Output (a)"
// Every step is then local (copy two tokens, compare neighbours), which a small critic learns;
// asked for the verdict alone, or after writing the answer only, it stays at chance. The prompt
// is a compact template that fits a small model's
// context; the wrong output, on a random side, is a near miss of the right one (two neighbours
// swapped, a letter changed, the letters left unreversed or unsorted, a sum off by 1, 2 or 10) or,
// one time in four, an unrelated answer of the same form (other letters, another sum), which a
// critic learns to spot first.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rlaif {

struct CheckableTask {
  std::string family;  // "reverse", "sort" or "add"
  std::string prompt;
  std::string answer;
};

// The critic's pairwise template: {instruction}, {output_1} shown as (a), {output_2} as (b).
extern const char* const kCompactPairwiseTemplate;

// A deterministic generator: the same seed gives the same tasks on every platform.
class CheckableTaskGenerator {
 public:
  explicit CheckableTaskGenerator(uint64_t seed) : state_(seed) {}

  CheckableTask next();
  // A wrong answer to `task` as described above (never equal to task.answer).
  std::string wrong_answer(const CheckableTask& task);
  // Uniform in [0, n).
  uint64_t below(uint64_t n);

 private:
  uint64_t next_u64();  // splitmix64
  uint64_t state_;
};

// The pairwise critic prompt for (instruction, output_1, output_2) in the compact template.
std::string compact_pairwise_prompt(const std::string& instruction, const std::string& output_1,
                                    const std::string& output_2);

// A critic's answer to the pair (output_1 as (a), output_2 as (b)), one of which is task.answer:
// the reasoning above and the verdict for the right one.
std::string critic_answer(const CheckableTask& task, const std::string& output_1,
                          const std::string& output_2);

// Whether `completion` answers `reference` exactly (surrounding whitespace ignored).
bool exact_match(const std::string& completion, const std::string& reference);

}  // namespace rlaif
