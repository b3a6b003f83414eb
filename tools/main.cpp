// rlaif: train and align language models from the command line. See `rlaif --help`.
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_info.h"
#include "runtime/communicator.h"
#include "runtime/error.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"

namespace rlaif::cli {

const std::vector<Command>& all_commands() {
  static const std::vector<Command> commands = {
      {"version", "print the version and what this binary was built with", version_main},
      {"init",
       "write a randomly initialised model directory (GPT-2, Llama, Qwen, or --like a config)",
       init_main},
      {"generate", "generate text from a prompt or a JSONL file of prompts", generate_main},
      {"eval-loss", "mean next-token cross-entropy of a model on text or a token shard",
       eval_loss_main},
      {"pretrain", "train a language model on text or a token shard", pretrain_main},
      {"sft", "supervised fine-tuning on prompt/completion demonstrations", sft_main},
      {"tokenizer train", "train a SentencePiece tokenizer on a text file", tokenizer_train_main},
      {"tokenize", "token ids of text or chat messages, or text of ids, as transformers gives them",
       tokenize_main},
      {"rm", "train a reward model on preference pairs (Bradley-Terry)", rm_main},
      {"score", "score answers or preference pairs with a reward model", score_main},
      {"dpo", "align a policy to preference pairs (DPO, cDPO, robust, IPO, hinge)", dpo_main},
      {"online-dpo", "DPO on the policy's own samples, judged as it trains (online, iterative)",
       online_dpo_main},
      {"ppo", "reinforcement learning against a reward model: PPO, RLOO or GRPO", ppo_main},
      {"kto", "align a policy to completions labelled good or bad (KTO)", kto_main},
      {"orpo", "preference pairs with no reference model: SFT plus an odds-ratio term (ORPO)",
       orpo_main},
      {"cpo", "preference pairs with no reference model: CPO and SimPO", cpo_main},
      {"distill", "a teacher's answers over the OpenAI-compatible API as SFT demonstrations",
       distill_main},
      {"sample", "K completions per prompt from a local model, for labelling", sample_main},
      {"label", "a critic's pairwise judgments over the API as preference pairs", label_main},
      {"eval", "win rate of a model against reference answers, judged by a critic over the API",
       eval_main},
      {"experiment",
       "the seed paper's arms end to end (SFT on teachers, DPO on AI feedback), scored",
       experiment_main},
      {"report", "one standalone HTML file with the training curves of runs", report_main},
      {"tasks", "instruction tasks with checkable answers, as the files an experiment needs",
       tasks_main},
      {"merge", "fold a LoRA adapter into its base model: a plain model directory", merge_main},
      {"serve", "serve a model over an OpenAI-compatible HTTP API (batched generation)",
       serve_main},
      {"bench",
       "benchmarks: bench train, bench dpo, bench kernels, bench attention, bench generate, bench "
       "tokenizer, bench serve",
       bench_main},
      {"bench train", "training tokens/s, ms per step, peak memory and MFU of a preset model",
       bench_train_main},
      {"bench dpo", "DPO steps/s and memory, reference live and precomputed, of a preset model",
       bench_dpo_main},
      {"bench kernels", "time each backend primitive against the device's copy and GEMM ceilings",
       bench_kernels_main},
      {"bench attention", "causal attention fwd and fwd+bwd over head dims, lengths and GQA",
       bench_attention_main},
      {"bench generate", "tokens/s of batched generation with the KV cache", bench_generate_main},
      {"bench tokenizer", "MB/s of encoding English and mixed-script text, 1 and all threads",
       bench_tokenizer_main},
      {"bench serve", "req/s, tok/s and latency of `rlaif serve` under load; --soak: its memory",
       bench_serve_main},
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

// Two settings that OpenBLAS and libgomp read once, when they load, so they must be in the
// environment before the process starts; when they are missing, rlaif sets them and re-executes
// itself (once). Each is left alone when the user set it, and RLAIF_NO_REEXEC=1 skips this.
// - OPENBLAS_CORETYPE: OpenBLAS 0.3.21 takes unknown CPU models (e.g. virtual machines that
//   report a generic "Intel Xeon Processor") for a Prescott and runs SSE3 kernels; on a CPU with
//   AVX2 and FMA the Haswell kernels are correct and 2-3x faster.
// - OMP_WAIT_POLICY=passive: idle OpenMP workers sleep instead of spinning between the many
//   short parallel regions of a training step; spinning workers stole the cores from the
//   thread doing the work (measured: 70% of a step's CPU time spinning in libgomp on 2 cores).
void tune_environment_and_reexec(char** argv) {
  if (std::getenv("RLAIF_NO_REEXEC") != nullptr || std::getenv("RLAIF_REEXECED") != nullptr) return;
  bool changed = false;
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr && rlaif::cpu::blas_core_name() == "Prescott" &&
      rlaif::cpu::cpu_has_avx2_fma()) {
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    changed = true;
  }
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    changed = true;
  }
  if (!changed) return;
  setenv("RLAIF_REEXECED", "1", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then carry on as we are
}

// glibc serves every allocation above 32 MiB (and smaller ones, until its dynamic threshold has
// risen) with a fresh mmap() and unmaps it when it is freed, so each CPU training step faults in
// (and the kernel zeroes) its large activations, logits and gradients again. GPT-2 124M at batch
// 2 × 128: 1.2M page faults for start-up and 5 steps, ~120K a step; with the blocks taken from
// the heap and kept there when freed, 0.6M, all of them start-up (none a step), and steps 10%
// faster (3.15 → 2.81 s and 3.33 → 2.99 s, alternated runs on a 2-core Xeon); peak RSS +4%.
// Left alone when the user tunes malloc through the environment. (ASan ignores mallopt.)
void keep_freed_memory() {
#if defined(__GLIBC__)
  for (const char* name : {"GLIBC_TUNABLES", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_"}) {
    if (std::getenv(name) != nullptr) return;
  }
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
#endif
}

}  // namespace
}  // namespace rlaif::cli

int main(int argc, char** argv) {
  using namespace rlaif::cli;
  tune_environment_and_reexec(argv);
  keep_freed_memory();
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
  // Under an MPI launcher with several ranks, a rank that fails must end the job: the others may
  // be waiting for it in a collective, and would wait forever.
  auto fail = [](int code) {
    std::fflush(nullptr);
    if (rlaif::launcher_world_size() > 1) {
      try {
        rlaif::world_communicator().abort_job(code);
      } catch (const std::exception&) {
        // Built without MPI: the ranks never shared a collective.
      }
    }
    return code;
  };
  try {
    return command->main(args);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "rlaif %s: %s\nRun 'rlaif %s --help' for its flags.\n", command->name,
                 e.what(), command->name);
    return fail(2);
  } catch (const rlaif::Error& e) {
    std::fprintf(stderr, "rlaif %s: error: %s\n", command->name, e.what());
    return fail(1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rlaif %s: unexpected error: %s\n", command->name, e.what());
    return fail(1);
  }
}
