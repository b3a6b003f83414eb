// The dataset columns of each prompt, for rewards that check a completion against them: a reward
// sees only (prompt, completion) pairs (algorithms/reward_function.h), so it looks the prompt up
// in the prompts file it was given, e.g. {"prompt": "Sort the letters b a.", "answer": "a b"}.
//
// A prompt may stand on several records when they agree on the columns kept; two records with the
// same prompt and different values of a kept column are an Error naming both records and the
// column (a reward could not know which one to check against).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "io/datasets.h"

namespace rlaif {

class PromptColumns {
 public:
  PromptColumns() = default;
  // Keeps the `kept` columns of every record (all of them when nullopt); Error for a conflict
  // (above). `source` names the file in errors.
  PromptColumns(const std::vector<PromptRecord>& records, const std::string& source,
                const std::optional<std::vector<std::string>>& kept = std::nullopt);
  // load_prompt_records(path), then as above.
  static PromptColumns load(const std::string& path,
                            const std::optional<std::vector<std::string>>& kept = std::nullopt);

  // The record of `prompt`: Error naming the file when no record has this prompt.
  const PromptRecord& record(const std::string& prompt) const;
  // The column of a record as text: a JSON string's characters, a number's JSON text; Error
  // naming the record (PATH:LINE) and the column when it is absent or of another type.
  static std::string text(const PromptRecord& record, const std::string& column);
  std::string text(const std::string& prompt, const std::string& column) const {
    return text(record(prompt), column);
  }

  const std::string& source() const { return source_; }
  // One record per distinct prompt (the first of those that agree), in file order.
  const std::vector<PromptRecord>& records() const { return records_; }

 private:
  std::string source_;
  std::vector<PromptRecord> records_;
  std::map<std::string, size_t> index_;  // prompt -> its record
};

// The text a column's JSON stands for: a string's characters, or a number's JSON text; nullopt
// for anything else (objects, arrays, booleans, null).
std::optional<std::string> column_text(const std::string& json);

}  // namespace rlaif
