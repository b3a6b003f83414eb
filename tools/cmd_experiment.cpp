// `rlaif experiment`: the arms of Sharma et al. (2024), "A Critical Evaluation of AI Feedback for
// Aligning LLMs", end to end, as a sequence of rlaif commands run as child processes:
//
//   SFT on the strong teacher's answers            sft_strong      (distill → sft)
//   SFT on the weak teacher's answers              sft_weak        (distill → sft)
//   sft_weak, then DPO on the critic's labels      sft_weak_dpo    (sample → label → dpo)
//     of its own samples (AI feedback)
//   the same on sft_strong                         sft_strong_dpo
//
// and every arm scored on held-out prompts: win rate against the reference answers, judged in
// both orders (± standard error), and exact-match accuracy where the task has one right answer.
// Each stage writes a marker (OUT/stages/NAME.json, its summary) when it is done; a re-run skips
// finished stages and continues the others where they stopped (training from its checkpoints,
// API stages from their request caches), so nothing is trained or paid for twice.
#include <rapidjson/document.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "algorithms/stop_signals.h"
#include "io/atomic_file.h"
#include "io/datasets.h"
#include "io/jsonl.h"
#include "io/run_directory.h"
#include "io/sha256.h"
#include "runtime/error.h"
#include "tools/api_flags.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"
#include "tools/experiment_config.h"
#include "tools/experiment_report.h"
#include "tools/subprocess.h"

namespace rlaif::cli {
namespace {

namespace fs = std::filesystem;

// The prompts of a prompts file (JSONL or JSON) and their characters: at about 4 characters a
// token, what the requests about them will hold.
struct PromptStats {
  int64_t count = 0, characters = 0;
};
PromptStats prompt_stats(const std::string& path) {
  PromptStats stats;
  for (const Conversation& c : load_prompt_conversations(path)) {
    ++stats.count;
    stats.characters += static_cast<int64_t>(prompt_text(c).size());
  }
  return stats;
}

std::string approx_tokens(int64_t characters) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "up to ~%lld prompt tokens",
                static_cast<long long>((characters + 3) / 4));
  return buf;
}

int64_t flag_integer(const FlagList& flags, const std::string& name, int64_t fallback) {
  for (const auto& [k, v] : flags) {
    if (k == name) return std::stoll(v);
  }
  return fallback;
}

// The last line of a command's stdout that parses as a JSON object: its summary.
std::string summary_line(const std::string& out) {
  std::istringstream lines(out);
  std::string line, last = "{}";
  while (std::getline(lines, line)) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(line.c_str());
    if (!doc.HasParseError() && doc.IsObject()) last = line;
  }
  return last;
}

bool has_checkpoint(const std::string& run_dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(run_dir) / "checkpoints", ec)) {
    if (e.path().filename().string().starts_with("step_")) return true;
  }
  return false;
}

// How a training stage continues in its own run directory: from its last checkpoint; else, when
// an interrupted attempt left files but no checkpoint, afresh over them (the directory belongs to
// the experiment, and its stage has no marker yet, so nothing in it is a finished result).
void continue_or_restart(std::vector<std::string>& command, const std::string& run_dir) {
  if (has_checkpoint(run_dir)) {
    command.insert(command.end(), {"--resume", run_dir});
  } else if (!run_entries(run_dir).empty()) {
    command.emplace_back("--overwrite");
  }
}

class Experiment {
 public:
  Experiment(ExperimentConfig config, std::string out, bool dry_run, SpendLimits limits)
      : c_(std::move(config)),
        out_(std::move(out)),
        dry_run_(dry_run),
        limits_(limits),
        self_(own_executable()) {}

  // Runs the stages; prints what the API stages spent, whatever the outcome.
  int run() {
    const int code = run_stages();
    if (!dry_run_) std::fprintf(stderr, "experiment: spent %s\n", describe_spend(spent_).c_str());
    return code;
  }

 private:
  // The flags that point an API command at `e`, serving a local model first when needed.
  std::vector<std::string> api_args(const Endpoint& e, const std::string& role);
  // Runs one stage unless its marker exists; returns its summary (a JSON object's text), or
  // nullopt when it failed or was interrupted (exit code in failed_code_).
  std::optional<std::string> stage(const std::string& name, std::vector<std::string> argv,
                                   const std::string& dry_run_note);
  // Whether a stage finished in an earlier run (its endpoints then need no server).
  bool done(const std::string& stage_name) const {
    return fs::exists(path("stages/" + stage_name + ".json"));
  }
  std::string path(const std::string& relative) const {
    return (fs::path(out_) / relative).string();
  }

  int run_stages();
  // For an API stage under a spending limit: appends what is left of the limit to its flags, or
  // returns false when nothing is left.
  bool pass_on_limits(const std::string& name, std::vector<std::string>& argv);
  // Adds the "spent" of an API stage's summary line to spent_.
  void count_spend(const std::string& summary);

  ExperimentConfig c_;
  std::string out_;
  bool dry_run_;
  SpendLimits limits_;  // over the API stages this run starts
  Spend spent_;         // what they spent
  std::string self_;
  std::map<std::string, std::unique_ptr<ServedModel>> served_;  // by model directory
  int failed_code_ = 0;
  // Ctrl-C reaches the running stage too (same process group), which stops cleanly on its own;
  // this process only records it, then stops its servers and says how to continue.
  StopSignals stop_;
};

// The name a local model is served under. Requests are cached by their body, which holds this
// name, so it depends on the model alone: a resumed run that starts its servers in another order
// or for another role still finds the answers it already has. The directory's name keeps it
// readable; a hash of its full path keeps two directories named alike apart.
std::string served_model_name(const std::string& model_dir) {
  const fs::path full = fs::weakly_canonical(fs::absolute(model_dir));
  std::string base = full.filename().string();
  if (base.empty()) base = full.parent_path().filename().string();
  return base + "-" + sha256_hex(full.string()).substr(0, 8);
}

std::vector<std::string> Experiment::api_args(const Endpoint& e, const std::string& role) {
  std::vector<std::string> args;
  if (e.local()) {
    const std::string name = served_model_name(e.model_dir);
    if (dry_run_) return {"--api-base", "http://127.0.0.1:PORT/v1", "--api-model", name};
    auto it = served_.find(e.model_dir);
    if (it == served_.end()) {
      std::fprintf(stderr, "experiment: serving %s as \"%s\" (%s)\n", e.model_dir.c_str(),
                   name.c_str(), role.c_str());
      it = served_
               .emplace(e.model_dir, std::make_unique<ServedModel>(
                                         e.model_dir, name, path("logs/serve_" + role + ".log")))
               .first;
    }
    args = {"--api-base", it->second->api_base(), "--api-model", it->second->name()};
  } else {
    args = {"--api-base", e.api_base, "--api-model", e.model};
    append_flags(args, e.api_flags);
  }
  return args;
}

std::optional<std::string> Experiment::stage(const std::string& name, std::vector<std::string> argv,
                                             const std::string& dry_run_note) {
  const std::string marker = path("stages/" + name + ".json");
  argv.insert(argv.begin(), self_);
  if (dry_run_) {
    std::printf("== %s%s\n   %s\n", name.c_str(), fs::exists(marker) ? " (done)" : "",
                shell_quote(argv).c_str());
    if (!dry_run_note.empty()) std::printf("   %s\n", dry_run_note.c_str());
    return "{}";
  }
  if (fs::exists(marker)) {
    std::ifstream in(marker);
    std::stringstream text;
    text << in.rdbuf();
    std::fprintf(stderr, "experiment: %s done earlier\n", name.c_str());
    return text.str();
  }
  if (stop_.pending() != 0) {
    failed_code_ = 128 + stop_.pending();
    return std::nullopt;
  }
  const bool api = std::find(argv.begin(), argv.end(), "--api-base") != argv.end();
  if (api && !pass_on_limits(name, argv)) {
    failed_code_ = kSpendLimitExit;
    return std::nullopt;
  }
  std::fprintf(stderr, "experiment: %s\n", name.c_str());
  {
    std::ofstream log(path("logs/commands.txt"), std::ios::app);
    log << name << ": " << shell_quote(argv) << "\n";
  }
  const ProcessResult r = run_process(argv);
  if (api) count_spend(summary_line(r.out));
  if (r.exit_code == kSpendLimitExit && api) {
    failed_code_ = r.exit_code;
    std::fprintf(stderr,
                 "experiment: %s stopped at the spending limit; re-run with a higher limit to "
                 "continue (nothing answered is asked again)\n",
                 name.c_str());
    return std::nullopt;
  }
  if (r.exit_code == 0 && stop_.pending() != 0) {  // finished despite the signal: keep it
    write_file_atomically(marker, summary_line(r.out) + "\n");
    failed_code_ = 128 + stop_.pending();
    std::fprintf(stderr, "experiment: stopped after %s; re-run the same command to continue\n",
                 name.c_str());
    return std::nullopt;
  }
  if (r.exit_code != 0) {
    failed_code_ = r.exit_code;
    std::fprintf(stderr, "experiment: %s %s (exit %d); re-run the same command to continue\n",
                 name.c_str(), r.exit_code >= 128 ? "was interrupted" : "failed", r.exit_code);
    return std::nullopt;
  }
  const std::string summary = summary_line(r.out);
  write_file_atomically(marker, summary + "\n");
  return summary;
}

bool Experiment::pass_on_limits(const std::string& name, std::vector<std::string>& argv) {
  const int64_t requests_left = limits_.max_requests - spent_.requests;
  const int64_t tokens_left = limits_.max_tokens - spent_.total_tokens();
  if ((limits_.max_requests > 0 && requests_left <= 0) ||
      (limits_.max_tokens > 0 && tokens_left <= 0)) {
    std::fprintf(stderr,
                 "experiment: the spending limit is reached before %s; re-run with a higher "
                 "limit to continue\n",
                 name.c_str());
    return false;
  }
  if (limits_.max_requests > 0)
    argv.insert(argv.end(), {"--max-requests", std::to_string(requests_left)});
  if (limits_.max_tokens > 0)
    argv.insert(argv.end(), {"--max-total-tokens", std::to_string(tokens_left)});
  return true;
}

void Experiment::count_spend(const std::string& summary) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(summary.c_str());
  if (doc.HasParseError() || !doc.IsObject()) return;
  auto it = doc.FindMember("spent");
  if (it == doc.MemberEnd() || !it->value.IsObject()) return;
  const rapidjson::Value& v = it->value;
  auto count = [&](const char* key) {
    auto m = v.FindMember(key);
    return m != v.MemberEnd() && m->value.IsInt64() ? m->value.GetInt64() : int64_t{0};
  };
  spent_.requests += count("requests");
  spent_.prompt_tokens += count("prompt_tokens");
  spent_.completion_tokens += count("completion_tokens");
  spent_.estimated_responses += count("estimated_responses");
}

int Experiment::run_stages() {
  if (!dry_run_) {
    fs::create_directories(path("stages"));
    fs::create_directories(path("logs"));
    fs::create_directories(path("data"));
  }
  const PromptStats train = prompt_stats(c_.train_prompts),
                    held_out = prompt_stats(c_.eval_prompts);
  const int64_t n_prompts = train.count, n_eval = held_out.count;
  const int64_t samples_per_prompt = flag_integer(c_.sample, "n", 2);
  // What the requests will hold, for --dry-run: the prompts, the critic's template around them,
  // and answers of at most max-new-tokens.
  const int64_t train_chars = train.characters, eval_chars = held_out.characters;
  int64_t template_chars = 600;  // about the default AlpacaEval-style template
  if (!c_.critic_template.empty() && fs::exists(c_.critic_template)) {
    template_chars = static_cast<int64_t>(fs::file_size(c_.critic_template));
  }
  const int64_t answer_chars = 4 * flag_integer(c_.sample, "max-new-tokens", 256);
  const int64_t eval_answer_chars = 4 * flag_integer(c_.eval, "max-new-tokens", 256);
  bool both_orders = true;
  for (const auto& [k, v] : c_.label) {
    if (k == "both-orders") both_orders = v != "false";
  }
  std::map<std::string, std::string> summaries;  // stage → summary
  auto need = [&](const std::string& stage_name, std::optional<std::string> s) {
    if (!s) return false;
    summaries[stage_name] = *s;
    return true;
  };

  // SFT arms: a teacher answers the prompts, the base model learns from the answers.
  for (const char* strength : {"strong", "weak"}) {
    const std::string sft = std::string("sft_") + strength;
    bool wanted = false;
    for (const std::string& arm : c_.arms) wanted = wanted || arm.starts_with(sft);
    if (!wanted) continue;
    const Endpoint& teacher =
        std::string(strength) == "strong" ? c_.strong_teacher : c_.weak_teacher;
    const std::string data = path("data/" + sft + ".jsonl");
    std::vector<std::string> distill = {"distill", "--prompts", c_.train_prompts, "--out", data};
    append_flags(distill, c_.distill);
    if (!done("distill_" + std::string(strength)))
      for (const std::string& a : api_args(teacher, std::string(strength) + "_teacher"))
        distill.push_back(a);
    if (!need("distill_" + std::string(strength),
              stage("distill_" + std::string(strength), distill,
                    std::to_string(n_prompts) + " requests to the " + strength + " teacher (" +
                        teacher.describe() + "), " + approx_tokens(train_chars))))
      return failed_code_;
    const std::string run_dir = path("arms/" + sft);
    std::vector<std::string> train = {"sft", "--model", c_.base_model, "--data",
                                      data,  "--out",   run_dir};
    append_flags(train, c_.sft);
    continue_or_restart(train, run_dir);
    if (!need(sft, stage(sft, train, ""))) return failed_code_;
  }

  // DPO arms: the SFT model's own samples, labelled by the critic, then DPO against it.
  for (const std::string& arm : c_.arms) {
    if (!arm.ends_with("_dpo")) continue;
    const std::string sft = arm.substr(0, arm.size() - 4), sft_dir = path("arms/" + sft);
    const std::string samples = path("data/" + arm + "_samples.jsonl");
    std::vector<std::string> sample = {"sample",         "--model", sft_dir, "--prompts",
                                       c_.train_prompts, "--out",   samples};
    append_flags(sample, c_.sample);
    if (!need("sample_" + arm, stage("sample_" + arm, sample, ""))) return failed_code_;
    const std::string prefs = path("data/" + arm + "_prefs.jsonl");
    std::vector<std::string> label = {"label", "--pairs", samples, "--out", prefs};
    if (!c_.critic_template.empty()) label.insert(label.end(), {"--template", c_.critic_template});
    FlagList label_flags = c_.label;
    bool given = false;
    for (const auto& [k, v] : label_flags) given = given || k == "both-orders";
    if (!given) label_flags.emplace_back("both-orders", "true");
    append_flags(label, label_flags);
    if (!done("label_" + arm)) {
      for (const std::string& a : api_args(c_.critic, "critic")) label.push_back(a);
    }
    const int64_t pairs = n_prompts * samples_per_prompt * (samples_per_prompt - 1) / 2;
    const int64_t label_chars =
        (both_orders ? 2 : 1) * (pairs * (template_chars + 2 * answer_chars) +
                                 train_chars * pairs / std::max<int64_t>(1, n_prompts));
    if (!need("label_" + arm, stage("label_" + arm, label,
                                    "about " + std::to_string(pairs * (both_orders ? 2 : 1)) +
                                        " requests to the critic (" + c_.critic.describe() + "), " +
                                        approx_tokens(label_chars))))
      return failed_code_;
    const std::string run_dir = path("arms/" + arm);
    std::vector<std::string> dpo = {"dpo", "--model", sft_dir, "--data", prefs, "--out", run_dir};
    append_flags(dpo, c_.dpo);
    continue_or_restart(dpo, run_dir);
    if (!need(arm, stage(arm, dpo, ""))) return failed_code_;
  }

  // Every arm on the held-out prompts, judged against the references in both orders.
  for (const std::string& arm : c_.arms) {
    std::vector<std::string> eval = {
        "eval",          "--model",       path("arms/" + arm),
        "--prompts",     c_.eval_prompts, "--reference",
        c_.eval_prompts, "--out",         path("eval/" + arm + ".jsonl")};
    if (!c_.critic_template.empty()) eval.insert(eval.end(), {"--template", c_.critic_template});
    if (c_.exact_match) eval.push_back("--exact-match");
    append_flags(eval, c_.eval);
    if (!done("eval_" + arm)) {
      for (const std::string& a : api_args(c_.judge, "judge")) eval.push_back(a);
    }
    if (!dry_run_) fs::create_directories(path("eval"));
    if (!need("eval_" + arm,
              stage("eval_" + arm, eval,
                    std::to_string(2 * n_eval) + " requests to the judge (" + c_.judge.describe() +
                        "), " +
                        approx_tokens(
                            2 * (n_eval * (template_chars + 2 * eval_answer_chars) + eval_chars)))))
      return failed_code_;
  }
  served_.clear();  // stop the servers before the report
  if (dry_run_) return 0;

  const ExperimentResults results = collect_results(c_, out_, summaries);
  write_results(results, out_);
  std::fputs(results_markdown(results).c_str(), stdout);
  std::printf("\nreport: %s\n", path("report.html").c_str());
  return 0;
}

}  // namespace

int experiment_main(const std::vector<std::string>& args) {
  Flags flags(
      "experiment",
      "Run the arms of Sharma et al. (2024), \"A Critical Evaluation of AI Feedback for\n"
      "Aligning LLMs\", end to end, and score them: SFT on a strong teacher's answers "
      "(sft_strong),\n"
      "SFT on a weak teacher's answers (sft_weak), and that SFT model followed by DPO on a\n"
      "critic's pairwise labels of its own samples, asked in both orders (sft_weak_dpo;\n"
      "sft_strong_dpo likewise). Each arm is scored on held-out prompts by its win rate against\n"
      "the reference answers, judged in both orders, with its standard error, and by exact-match\n"
      "accuracy where the task has one right answer. Teachers, critic and judge are\n"
      "OpenAI-compatible APIs or local model directories, which rlaif serves on loopback ports so\n"
      "that every call takes the API path. The config file is described in\n"
      "tools/experiment_config.h; data/miniature/experiment.json runs offline on 2 CPU cores.\n"
      "Writes OUT/results.json, OUT/results.md and OUT/report.html. Every stage is resumable: a\n"
      "re-run after Ctrl-C, a crash or an exhausted quota continues where it stopped and sends\n"
      "no request twice. --max-requests and --max-total-tokens bound what the API stages this\n"
      "run starts spend together (each gets what is left); at the limit the run stops with exit\n"
      "status 3, and a re-run with a higher limit continues.");
  flags.config_is_input("the experiment's JSON file (tools/experiment_config.h)")
      .option("out", "", "experiment directory", true)
      .flag("dry-run", "print each stage's command and the requests it would send; run nothing");
  declare_spend_flags(flags, "API");
  if (!flags.parse(args)) return 0;
  const ExperimentConfig config = ExperimentConfig::load(flags.str("config"));
  Experiment experiment(config, flags.str("out"), flags.on("dry-run"), spend_limits(flags));
  return experiment.run();
}

}  // namespace rlaif::cli
