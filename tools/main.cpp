// rlaif: train and align language models from the command line. See `rlaif --help`.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"

namespace rlaif::cli {

const std::vector<Command>& all_commands() {
  static const std::vector<Command> commands = {
      {"version", "print the version and what this binary was built with", version_main},
      {"init", "write a randomly initialised GPT-2 or Llama model directory", init_main},
      {"generate", "generate text from a prompt or a JSONL file of prompts", generate_main},
      {"eval-loss", "mean next-token cross-entropy of a model on text or a token shard",
       eval_loss_main},
      {"pretrain", "train a language model on text or a token shard", pretrain_main},
      {"tokenizer train", "train a SentencePiece tokenizer on a text file", tokenizer_train_main},
  };
  return commands;
}

namespace {

void print_help() {
  std::printf(
      "usage: rlaif COMMAND [--flag value ...]\n\n"
      "rlaif trains and aligns GPT-2 and Llama-family language models (pretraining, SFT, reward\n"
      "models, DPO, PPO) in C++/CUDA, with no deep-learning framework.\n\ncommands:\n");
  for (const Command& c : all_commands()) std::printf("  %-20s %s\n", c.name, c.summary);
  std::printf(
      "\n`rlaif COMMAND --help` documents every flag of a command with its default.\n"
      "Any command takes --config FILE.json to supply its flags.\n");
}

// Finds the longest command name matching the leading words ("tokenizer train").
const Command* match(const std::vector<std::string>& words, size_t& used) {
  const Command* best = nullptr;
  for (const Command& c : all_commands()) {
    std::string joined;
    for (size_t n = 0; n < words.size(); ++n) {
      joined += (n ? " " : "") + words[n];
      if (joined == c.name && (best == nullptr || n + 1 > used)) {
        best = &c;
        used = n + 1;
      }
    }
  }
  return best;
}

}  // namespace
}  // namespace rlaif::cli

int main(int argc, char** argv) {
  using namespace rlaif::cli;
  std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty() || words[0] == "--help" || words[0] == "-h" || words[0] == "help") {
    print_help();
    return words.empty() ? 2 : 0;
  }
  size_t used = 0;
  const Command* command = match(words, used);
  if (command == nullptr) {
    std::fprintf(stderr, "rlaif: unknown command '%s'. Run 'rlaif --help' for the list.\n",
                 words[0].c_str());
    return 2;
  }
  std::vector<std::string> args(words.begin() + static_cast<long>(used), words.end());
  try {
    return command->main(args);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "rlaif %s: %s\nRun 'rlaif %s --help' for its flags.\n", command->name,
                 e.what(), command->name);
    return 2;
  } catch (const rlaif::Error& e) {
    std::fprintf(stderr, "rlaif %s: error: %s\n", command->name, e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rlaif %s: unexpected error: %s\n", command->name, e.what());
    return 1;
  }
}
