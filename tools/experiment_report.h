// The results of `rlaif experiment`: one row per arm, shaped like the tables of Sharma et al.
// (2024), written as OUT/results.json, OUT/results.md and OUT/report.html (the table, bar charts
// of win rate and accuracy with standard errors, each arm's training curves, and answers of every
// arm to the same held-out prompts side by side).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "tools/experiment_config.h"

namespace rlaif::cli {

struct ArmResult {
  std::string arm;
  std::string teacher;       // the endpoint whose answers the SFT stage learned from
  std::string critic;        // the endpoint that labelled the DPO pairs ("" for SFT arms)
  int64_t sft_examples = 0;  // teacher answers kept
  int64_t preference_pairs = 0;
  double win_rate = 0, win_rate_stderr = 0;  // NaN when unknown
  double accuracy = 0, accuracy_stderr = 0;  // NaN without exact match
  int64_t judged = 0;
  // How often the judge agreed with the exact-match checker on this arm's wrong answers:
  // the share of them it judged worse than the reference in both orders (NaN without exact
  // match or without wrong answers), over `wrong_judged` of them.
  double judge_agreement = 0;
  int64_t wrong_judged = 0;
  // Measured against the checker where the train prompts carry their right "answer" (NaN
  // otherwise): the share of the teacher's kept answers that are right, over `teacher_checked`;
  // and, over the `critic_decisive` pairs the critic was shown in which exactly one sample is
  // right, the share in which it preferred that one in both orders (a tie, an unparsed answer
  // or a failed request counts as not right).
  double teacher_accuracy = 0;
  int64_t teacher_checked = 0;
  double critic_accuracy = 0;
  int64_t critic_decisive = 0;
  int64_t requests = 0;  // API requests behind this arm (teacher, critic and judge)
  int64_t tokens = 0;    // their prompt + completion tokens
};

struct ExperimentResults {
  std::string config_path;
  std::string judge;
  std::vector<ArmResult> arms;
  // The whole experiment's API cost: every API stage counted once (arms that share a teacher's
  // answers share its distill stage, which each arm's own figures include).
  int64_t requests = 0;
  int64_t tokens = 0;
};

// Reads each stage's summary (stage name → its JSON line) into one row per arm.
ExperimentResults collect_results(const ExperimentConfig& config, const std::string& out_dir,
                                  const std::map<std::string, std::string>& summaries);

std::string results_markdown(const ExperimentResults& results);

// Writes results.json, results.md and report.html into out_dir.
void write_results(const ExperimentResults& results, const std::string& out_dir);

}  // namespace rlaif::cli
