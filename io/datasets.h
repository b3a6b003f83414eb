// Instruction and preference datasets in the formats DESIGN.md lists (TRL's field names), read
// from JSONL (one object per line) or from a JSON array (`.json`, as LLaMA-Factory ships them).
//
// SFT records (one of):
//   {"prompt": "...", "completion": "..."}
//   {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
//   {"instruction": "...", "input": "...", "output": "..."}          (Alpaca)
// Preference records (one of):
//   {"prompt": "...", "chosen": "...", "rejected": "..."}             (extra fields are kept aside)
//   {"chosen": [messages...], "rejected": [messages...]}              (TRL conversational)
//   {"conversations": [{"from": "human"|"gpt", "value": "..."}], "chosen": {"from": "gpt",
//    "value": "..."}, "rejected": {...}}                               (LLaMA-Factory)
// Prompt records: {"prompt": "..."} (an Alpaca "instruction" is accepted too).
//
// Multi-turn conversations become one prompt for the single-turn chat template
// "Human: {prompt}\n\nAssistant: ": earlier turns are rendered inside it as
// "user 1\n\nAssistant: reply 1\n\nHuman: user 2", so the template produces the whole transcript.
// A malformed record is an Error naming the file and line (or array index); nothing is skipped.
#pragma once

#include <string>
#include <vector>

namespace rlaif {

struct SftExample {
  std::string prompt;
  std::string completion;
};

struct PreferencePair {
  std::string prompt;
  std::string chosen;
  std::string rejected;
};

std::vector<SftExample> load_sft_examples(const std::string& path);
std::vector<PreferencePair> load_preferences(const std::string& path);
std::vector<std::string> load_prompts(const std::string& path);

}  // namespace rlaif
