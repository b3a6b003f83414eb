// The JSON file that describes an experiment of `rlaif experiment` (the arms of Sharma et al.,
// 2024, "A Critical Evaluation of AI Feedback for Aligning LLMs"):
//
// {
//   "base_model": "data/miniature/base",            the student every arm starts from
//   "train_prompts": "data/miniature/prompts.jsonl", prompts the teachers answer
//   "eval_prompts": "data/miniature/eval.jsonl",     held-out prompts with reference answers
//   "exact_match": true,                             also score answers by exact match
//   "strong_teacher": ENDPOINT, "weak_teacher": ENDPOINT,
//   "critic": ENDPOINT,                              labels preferences (AI feedback)
//   "judge": ENDPOINT,                               judges the win rates (default: the critic)
//   "critic_template": "data/miniature/critic_template.txt",  pairwise template (optional)
//   "arms": ["sft_strong", "sft_weak", "sft_weak_dpo", "sft_strong_dpo"],
//   "distill": {...}, "sft": {...}, "sample": {...}, "label": {...}, "dpo": {...}, "eval": {...}
// }
//
// An ENDPOINT is a local model directory, {"model_dir": "DIR"} (rlaif serves it on a loopback
// port, so every call takes the real API path), or an OpenAI-compatible API,
// {"api_base": "https://api.openai.com/v1", "model": "gpt-4", "max_rpm": 500, ...}: any key
// besides api_base and model is a flag of the API commands (concurrency, max-rpm, timeout, ...).
// Each stage section holds flags of that rlaif command by name, without the dashes
// ({"steps": 300, "lr": 0.001}); true stands for a switch given, false for one left out.
// Relative paths are relative to the config file's directory.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace rlaif::cli {

using FlagList = std::vector<std::pair<std::string, std::string>>;  // name → value ("true": switch)

struct Endpoint {
  std::string model_dir;  // a local model (served by rlaif), or
  std::string api_base;   // an OpenAI-compatible API
  std::string model;      // the API's model name
  FlagList api_flags;     // more flags of the API commands
  bool local() const { return !model_dir.empty(); }
  std::string describe() const;  // "local: DIR" or "MODEL at API_BASE"
};

struct ExperimentConfig {
  std::string path;  // the config file
  std::string base_model;
  std::string train_prompts;
  std::string eval_prompts;
  bool exact_match = false;
  Endpoint strong_teacher, weak_teacher, critic, judge;
  std::string critic_template;
  std::vector<std::string> arms;
  FlagList distill, sft, sample, label, dpo, eval;

  static ExperimentConfig load(const std::string& path);
};

// The arms rlaif knows: "sft_strong", "sft_weak" (SFT on a teacher's answers), "sft_weak_dpo"
// and "sft_strong_dpo" (that SFT model, then DPO on the critic's labels of its own samples).
const std::vector<std::string>& known_arms();

// Appends --name value (or --name for a switch that is "true"; nothing for "false").
void append_flags(std::vector<std::string>& argv, const FlagList& flags);

}  // namespace rlaif::cli
