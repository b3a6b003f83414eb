// Instruction and preference datasets in the formats docs/DESIGN.md lists (TRL's field names), read
// from JSONL (one object per line) or from a JSON array (`.json`, as LLaMA-Factory ships them).
//
// SFT records (one of):
//   {"prompt": "...", "completion": "..."}
//   {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
//   {"prompt": [messages...], "completion": [{"role": "assistant", ...}]} (TRL conversational)
//   {"instruction": "...", "input": "...", "output": "..."}          (Alpaca; LLaMA-Factory's
//    optional "system" and "history": [[instruction, response], ...] come before it)
// Preference records (one of):
//   {"prompt": "...", "chosen": "...", "rejected": "..."}             (extra fields are ignored)
//   {"chosen": [messages...], "rejected": [messages...]}              (TRL conversational,
//    optionally with the shared turns in "prompt": [messages...] and only replies in
//    chosen/rejected)
//   {"conversations": [{"from": "human"|"gpt", "value": "..."}], "chosen": {"from": "gpt",
//    "value": "..."}, "rejected": {...}}                               (LLaMA-Factory)
// Unpaired (KTO) records, a completion labelled desirable or not:
//   {"prompt": "...", "completion": "...", "label": true|false}
//   {"prompt": [messages...], "completion": [{"role": "assistant", ...}], "label": ...} (TRL
//    conversational)
// Prompt records: {"prompt": "..."} or {"prompt": [messages...]} (an Alpaca "instruction", with
// its input, is accepted too, as in AlpacaEval's file).
//
// Every record keeps its conversation (io/chat_template.h renders it with the model's template)
// and also has its prompt as one text, the key by which references and outputs are matched: a
// single user turn is its own text; longer conversations are flattened as the default template
// flattens them, "user 1\n\nAssistant: reply 1\n\nHuman: user 2", system turns (wherever they
// stand) first, each followed by a blank line.
// A malformed record is an Error naming the file and line (or array index); nothing is skipped.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "io/chat_message.h"

namespace rlaif {

struct SftExample {
  std::string prompt;       // the turns before the reply, as one text (see above)
  std::string completion;   // the last reply
  Conversation messages{};  // the whole conversation, ending with the reply
};

struct PreferencePair {
  std::string prompt;
  std::string chosen;
  std::string rejected;
  double margin = 0.0;  // how strongly chosen beats rejected (see load_preferences' margin_key)
  Conversation prompt_messages{};  // the turns before the reply
};

// A completion labelled desirable (KTO's "label": true) or undesirable.
struct LabeledCompletion {
  std::string prompt;
  std::string completion;
  bool desirable = true;
  Conversation prompt_messages{};  // the turns before the reply
};

std::vector<SftExample> load_sft_examples(const std::string& path);
// Unpaired records (above); a record whose "label" is missing or not a boolean is an Error.
std::vector<LabeledCompletion> load_labeled_completions(const std::string& path);
// Preference pairs as unpaired examples, as TRL unpairs them: every chosen answer (desirable),
// in order, then every rejected one (undesirable).
std::vector<LabeledCompletion> unpair_preferences(const std::vector<PreferencePair>& pairs);
// With a `margin_key`, every record must hold a number under that key (e.g. the gap between two
// ratings), which becomes PreferencePair::margin; without one, margins are 0.
std::vector<PreferencePair> load_preferences(const std::string& path,
                                             const std::string& margin_key = "");
// Whether the first record of `path` is a preference record (has "chosen" and "rejected"), for
// commands that accept either kind of file.
bool is_preference_file(const std::string& path);
// The prompts as texts (see above), and as conversations ending with the user's turn.
std::vector<std::string> load_prompts(const std::string& path);
std::vector<Conversation> load_prompt_conversations(const std::string& path);
// The text of a prompt conversation, as load_prompts gives it.
std::string prompt_text(const Conversation& prompt);

// A prompt record with the rest of its fields (the dataset's columns), for rewards that check a
// completion against them (e.g. {"prompt": "Sort the letters b a.", "answer": "a b"}).
struct PromptRecord {
  std::string prompt;  // as load_prompts gives it
  std::string where;   // "PATH:LINE" or "PATH[INDEX]"
  // Every top-level field but "prompt", as compact JSON text: "answer" -> "\"a b\"", "n" -> "71".
  std::map<std::string, std::string> columns;
};
// The records of a prompts file, in file order (the prompts of load_prompts, with their fields).
std::vector<PromptRecord> load_prompt_records(const std::string& path);

}  // namespace rlaif
