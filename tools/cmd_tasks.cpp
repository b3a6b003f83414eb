// `rlaif tasks`: checkable instruction tasks (algorithms/checkable_tasks.h) as the files an
// experiment needs: demonstrations, fresh prompts, held-out prompts with reference answers,
// critic examples, and text to train a tokenizer and a base model on.
#include <rapidjson/document.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <string>

#include "algorithms/checkable_tasks.h"
#include "io/atomic_file.h"
#include "io/jsonl.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"
#include "tools/output_flags.h"

namespace rlaif::cli {
namespace {

std::string record(const std::vector<std::pair<const char*, std::string>>& fields) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  for (const auto& [key, value] : fields) {
    doc.AddMember(rapidjson::StringRef(key), rapidjson::Value(value.c_str(), a), a);
  }
  return to_json_line(doc) + "\n";
}

}  // namespace

int tasks_main(const std::vector<std::string>& args) {
  Flags flags(
      "tasks",
      "Write instruction tasks whose answers can be checked exactly (reverse the letters, sort\n"
      "the letters, add two numbers; see algorithms/checkable_tasks.h) into --out:\n"
      "  train.jsonl         correct demonstrations {prompt, completion, family}\n"
      "  prompts.jsonl       other prompts {prompt, answer, family}, for a teacher to answer\n"
      "                      (the right answer is there to measure teachers and critics)\n"
      "  eval.jsonl          held-out prompts with reference answers {prompt, completion, family}\n"
      "  critic_train.jsonl  pairwise critic examples {prompt, completion}: each output checked\n"
      "                      against the right answer in <think>...</think>, then the verdict\n"
      "                      \"Output (a)\" or \"Output (b)\"\n"
      "  critic_template.txt the critic's compact pairwise template\n"
      "  pretrain.txt        the demonstrations as plain text (\"Q: ...\\nA: ...\"), no chat "
      "format\n"
      "  tokenizer.txt       text covering both formats, to train a tokenizer on\n"
      "No prompt of prompts.jsonl or eval.jsonl is among the demonstrations' prompts, and none\n"
      "is in both. The same --seed writes the same files.");
  flags.option("out", "", "output directory", true)
      .option("train", "20000", "demonstrations")
      .option("prompts", "2000", "prompts for a teacher to answer")
      .option("eval", "300", "held-out prompts with reference answers")
      .option("critic", "20000", "critic examples")
      .option("families", "reverse,sort,add",
              "the task families to write (comma-separated: reverse, sort, add)")
      .option("seed", "1", "generator seed");
  declare_overwrite_flag(flags);
  if (!flags.parse(args)) return 0;
  const int64_t n_train = flags.integer("train"), n_prompts = flags.integer("prompts"),
                n_eval = flags.integer("eval"), n_critic = flags.integer("critic");
  for (const char* name : {"train", "prompts", "eval", "critic"}) {
    if (flags.integer(name) < 0)
      throw UsageError(std::string("--") + name + " must not be negative");
  }
  std::set<std::string> families;
  for (const std::string& f : split_list(flags.str("families"))) {
    if (f != "reverse" && f != "sort" && f != "add")
      throw UsageError("--families: unknown family '" + f + "' (reverse, sort, add)");
    families.insert(f);
  }
  const std::filesystem::path out = flags.str("out");
  std::vector<std::string> outputs;
  for (const char* file : {"train.jsonl", "prompts.jsonl", "eval.jsonl", "critic_train.jsonl",
                           "critic_template.txt", "pretrain.txt", "tokenizer.txt"}) {
    outputs.push_back((out / file).string());
  }
  check_outputs_free(flags, outputs);
  std::filesystem::create_directories(out);
  const uint64_t seed = static_cast<uint64_t>(flags.integer("seed"));

  CheckableTaskGenerator gen(seed);
  // The next task of the families asked for (all three: every task the generator makes).
  auto next = [&](CheckableTaskGenerator& g) {
    for (;;) {
      CheckableTask t = g.next();
      if (families.count(t.family)) return t;
    }
  };
  std::set<std::string> seen;
  std::string train, pretrain, tokenizer_text;
  for (int64_t i = 0; i < n_train; ++i) {
    const CheckableTask t = next(gen);
    seen.insert(t.prompt);
    train += record({{"prompt", t.prompt}, {"completion", t.answer}, {"family", t.family}});
    pretrain += "Q: " + t.prompt + "\nA: " + t.answer + "\n";
    tokenizer_text += "Human: " + t.prompt + "\n" + "Assistant: " + t.answer + "\n";
  }
  // Fresh prompts, never a demonstration's and never repeated: the next ones not seen yet.
  auto fresh = [&](int64_t n, const char* answer_key) {
    std::string text;
    for (int64_t kept = 0; kept < n;) {
      const CheckableTask t = next(gen);
      if (!seen.insert(t.prompt).second) continue;
      text += record({{"prompt", t.prompt}, {answer_key, t.answer}, {"family", t.family}});
      ++kept;
    }
    return text;
  };
  const std::string prompts = fresh(n_prompts, "answer"), eval = fresh(n_eval, "completion");
  // Critic examples come from their own stream, so their count changes no other file.
  CheckableTaskGenerator critic_gen(seed ^ 0x5bd1e995u);
  std::string critic;
  for (int64_t i = 0; i < n_critic; ++i) {
    const CheckableTask t = next(critic_gen);
    const std::string wrong = critic_gen.wrong_answer(t);
    const bool right_first = critic_gen.below(2) == 0;
    const std::string prompt = right_first ? compact_pairwise_prompt(t.prompt, t.answer, wrong)
                                           : compact_pairwise_prompt(t.prompt, wrong, t.answer);
    const std::string verdict =
        right_first ? critic_answer(t, t.answer, wrong) : critic_answer(t, wrong, t.answer);
    critic += record({{"prompt", prompt}, {"completion", verdict}});
    if (i < n_train) tokenizer_text += "Human: " + prompt + "\nAssistant: " + verdict + "\n";
  }
  write_file_atomically((out / "train.jsonl").string(), train);
  write_file_atomically((out / "prompts.jsonl").string(), prompts);
  write_file_atomically((out / "eval.jsonl").string(), eval);
  write_file_atomically((out / "critic_train.jsonl").string(), critic);
  write_file_atomically((out / "critic_template.txt").string(),
                        std::string(kCompactPairwiseTemplate) + "\n");
  write_file_atomically((out / "pretrain.txt").string(), pretrain);
  write_file_atomically((out / "tokenizer.txt").string(), tokenizer_text);
  std::printf(
      "{\"out\": \"%s\", \"train\": %lld, \"prompts\": %lld, \"eval\": %lld, \"critic\": %lld}\n",
      out.string().c_str(), static_cast<long long>(n_train), static_cast<long long>(n_prompts),
      static_cast<long long>(n_eval), static_cast<long long>(n_critic));
  return 0;
}

}  // namespace rlaif::cli
