// --chat-template, as every command that renders prompts declares and reads it
// (io/chat_template.h says which template wins).
#pragma once

#include <string>
#include <vector>

#include "algorithms/sequences.h"
#include "io/chat_template.h"
#include "io/tokenizer.h"
#include "tools/cli_flags.h"

namespace rlaif::cli {

void declare_chat_template_flag(Flags& flags);
// The template for the model in `model_dir`; UsageError naming the flag when its value is not a
// template. With a `command` name, prints to stderr which template applies, prefixed by it.
ChatTemplate chat_template_from_flags(const Flags& flags, const std::string& model_dir,
                                      const char* command = nullptr);

// The prompts of `path` (io/datasets.h) for a command that renders each as one user turn with
// `chat`. With a Jinja template a prompt of several turns (or with a system turn) is an Error
// naming the file and prompt: those commands do not render whole conversations yet.
std::vector<std::string> load_single_turn_prompts(const std::string& path, const ChatTemplate& chat,
                                                  const char* command);

// Prints one training sequence to stderr as text, special tokens written out and the trained
// tokens between ⟦ and ⟧, so that a user sees the template and the loss mask before a run.
void print_training_sequence(const Tokenizer& tokenizer, const TokenizedExample& example,
                             const char* command);

}  // namespace rlaif::cli
