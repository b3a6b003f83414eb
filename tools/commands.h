// The rlaif command table: every command is one file tools/cmd_NAME.cpp defining one entry point.
#pragma once

#include <string>
#include <vector>

namespace rlaif::cli {

// Runs the command with the arguments after its name; returns the process exit code. Usage
// mistakes throw UsageError (exit 2), everything else that fails throws rlaif::Error (exit 1).
using CommandMain = int (*)(const std::vector<std::string>& args);

struct Command {
  const char* name;     // as typed: "version", "tokenizer train"
  const char* summary;  // one line for `rlaif --help`
  CommandMain main;
};

const std::vector<Command>& all_commands();

int version_main(const std::vector<std::string>& args);
int init_main(const std::vector<std::string>& args);
int generate_main(const std::vector<std::string>& args);
int eval_loss_main(const std::vector<std::string>& args);
int pretrain_main(const std::vector<std::string>& args);
int sft_main(const std::vector<std::string>& args);
int tokenizer_train_main(const std::vector<std::string>& args);
int tokenize_main(const std::vector<std::string>& args);
int rm_main(const std::vector<std::string>& args);
int score_main(const std::vector<std::string>& args);
int dpo_main(const std::vector<std::string>& args);
int online_dpo_main(const std::vector<std::string>& args);
int ppo_main(const std::vector<std::string>& args);
int kto_main(const std::vector<std::string>& args);
int orpo_main(const std::vector<std::string>& args);
int cpo_main(const std::vector<std::string>& args);
int distill_main(const std::vector<std::string>& args);
int sample_main(const std::vector<std::string>& args);
int label_main(const std::vector<std::string>& args);
int eval_main(const std::vector<std::string>& args);
int report_main(const std::vector<std::string>& args);
int tasks_main(const std::vector<std::string>& args);
int experiment_main(const std::vector<std::string>& args);
int merge_main(const std::vector<std::string>& args);
int serve_main(const std::vector<std::string>& args);
int bench_main(const std::vector<std::string>& args);
int bench_train_main(const std::vector<std::string>& args);
int bench_kernels_main(const std::vector<std::string>& args);
int bench_generate_main(const std::vector<std::string>& args);
int bench_dpo_main(const std::vector<std::string>& args);
int bench_attention_main(const std::vector<std::string>& args);
int bench_tokenizer_main(const std::vector<std::string>& args);
int bench_serve_main(const std::vector<std::string>& args);

}  // namespace rlaif::cli
