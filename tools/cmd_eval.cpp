// `rlaif eval`: the win rate of a local model against reference outputs, judged by an LLM
// critic (the AlpacaEval 1 protocol).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>

#include "algorithms/checkable_tasks.h"
#include "algorithms/stop_signals.h"
#include "io/atomic_file.h"
#include "io/datasets.h"
#include "io/jsonl.h"
#include "io/judge.h"
#include "io/llm_client.h"
#include "io/progress.h"
#include "runtime/error.h"
#include "tools/api_flags.h"
#include "tools/chat_flags.h"
#include "tools/commands.h"
#include "tools/local_generation.h"

namespace rlaif::cli {

int eval_main(const std::vector<std::string>& args) {
  Flags flags(
      "eval",
      "Generate an answer to every prompt with a local model and have a critic (any\n"
      "OpenAI-compatible chat API) compare it with the reference answer, in both orders\n"
      "(AlpacaEval 1's pairwise protocol and template; answers parsed strictly). An item scores\n"
      "1 when the model's answer is preferred in both orders, 0 when the reference is, 0.5 when\n"
      "the two orders disagree; items with an unparsed answer or a failed request are excluded\n"
      "and counted. Prints the win rate with its standard error (the standard deviation of the\n"
      "item scores over sqrt(n)) as JSON on stdout, and writes every judgment to --out.\n"
      "data/eval/alpaca_eval.json holds AlpacaEval's 805 instructions with reference outputs\n"
      "({\"instruction\", \"output\"}), so it serves as both --prompts and --reference.\n"
      "At a spending limit (--max-requests, --max-total-tokens) the items judged so far are\n"
      "scored and written and the exit status is 3. --dry-run generates nothing: each answer\n"
      "counts at its longest (--max-new-tokens) and the cache is not consulted.");
  flags.option("prompts", "", "prompts file: JSONL or JSON ({\"prompt\"} or Alpaca records)", true)
      .option("reference", "",
              "reference answers: SFT records ({\"prompt\", \"completion\"}, Alpaca's "
              "{\"instruction\", \"output\"}, ...) covering every prompt",
              true)
      .option("out", "", "JSONL file of every judgment (none when empty)")
      .option("limit", "0", "evaluate only the first N prompts (0 = all)")
      .option("template", "",
              "judge template file with {instruction}, {output_1}, {output_2} (default: "
              "AlpacaEval-style)")
      .option("judge-max-tokens", "16", "tokens the critic may answer with")
      .flag("exact-match",
            "also score each answer by exact match with the reference (surrounding whitespace "
            "ignored), for tasks with one right answer: accuracy and its standard error");
  declare_generation_flags(flags, "0", "256");
  declare_api_flags(flags, "critic");
  if (!flags.parse(args)) return 0;
  const int64_t limit = flags.integer("limit");
  if (limit < 0) throw UsageError("--limit must not be negative");
  if (flags.integer("judge-max-tokens") < 1)
    throw UsageError("--judge-max-tokens must be at least 1");
  const std::string out_path = flags.str("out");
  if (!out_path.empty()) ensure_parent_dir(out_path);
  ClientOptions client_options =
      api_client_options(flags, out_path.empty() ? "" : cache_beside(out_path));
  JudgeTemplate judge =
      flags.str("template").empty()
          ? JudgeTemplate::default_pairwise()
          : JudgeTemplate::from_file(JudgeTemplate::Kind::pairwise, flags.str("template"));
  judge.set_max_tokens(flags.integer("judge-max-tokens"));

  const std::string prompts_path = flags.str("prompts"), ref_path = flags.str("reference");
  std::vector<Conversation> conversations = load_prompt_conversations(prompts_path);
  if (limit > 0 && static_cast<size_t>(limit) < conversations.size()) conversations.resize(limit);
  std::vector<std::string> prompts;  // the keys of the references (io/datasets.h's prompt text)
  for (const Conversation& c : conversations) prompts.push_back(prompt_text(c));
  std::map<std::string, std::string> reference_of;
  for (SftExample& e : load_sft_examples(ref_path)) reference_of.emplace(e.prompt, e.completion);
  std::vector<std::string> references;
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto it = reference_of.find(prompts[i]);
    RLAIF_CHECK(it != reference_of.end(), prompts_path, " record ", i + 1, ": ", ref_path,
                " holds no reference answer for this prompt");
    references.push_back(it->second);
  }

  if (flags.on("dry-run")) {
    // The model's answers are not generated in a dry run: each stands in at its longest,
    // --max-new-tokens tokens of 4 bytes, and the cache, keyed by the answers, is not consulted.
    const std::string longest(static_cast<size_t>(4 * flags.integer("max-new-tokens")), 'x');
    std::vector<CompletionRequest> requests;
    std::vector<bool> x_as_a;
    for (size_t i = 0; i < prompts.size(); ++i) {
      for (CompletionRequest& r :
           pair_requests(judge, prompts[i], longest, references[i], true, "", x_as_a)) {
        requests.push_back(std::move(r));
      }
    }
    print_dry_run("eval", estimate_spend(requests, client_options.model, ""));
    return 0;
  }

  StopSignals stop;
  // The model's answers, each on the stream of its prompt's index.
  LocalGenerator generator(flags);
  std::vector<std::string> outputs(prompts.size());
  {
    Progress progress("eval: generate", static_cast<int64_t>(prompts.size()), "prompts");
    int64_t tokens = 0, done = 0;
    std::vector<uint64_t> streams;
    for (size_t i = 0; i < prompts.size(); ++i) streams.push_back(i);
    generator.generate(
        conversations, streams,
        [&](size_t i, LocalCompletion c) {
          tokens += c.tokens;
          outputs[i] = std::move(c.text);
          progress.update(++done, tokens);
        },
        [&] { return stop.pending() != 0; });
    progress.finish();
  }
  if (stop.pending() != 0) return 128 + stop.pending();

  // Two judgments per item: the model's answer as (a), then the reference as (a).
  std::vector<CompletionRequest> requests;
  std::vector<bool> x_as_a;
  for (size_t i = 0; i < prompts.size(); ++i) {
    for (CompletionRequest& r :
         pair_requests(judge, prompts[i], outputs[i], references[i], /*both_orders=*/true,
                       prompts_path + " record " + std::to_string(i + 1), x_as_a)) {
      requests.push_back(std::move(r));
    }
  }
  LlmClient client(client_options);
  client.set_stop_check([&] { return stop.pending() != 0; });
  std::vector<CompletionResult> results;
  {
    Progress progress("eval: judge", static_cast<int64_t>(requests.size()), "judgments");
    int64_t done = 0;
    results = client.complete_all(
        requests, [&](size_t, const CompletionResult&) { progress.update(++done); });
    progress.finish();
  }
  std::fprintf(stderr, "eval: %s\n", client.usage_summary().c_str());
  const bool limited = report_spend("eval", client);
  if (stop.pending() != 0) {
    std::fprintf(stderr, "eval: interrupted; re-run to continue (the answers so far are cached)\n");
    return 128 + stop.pending();
  }

  const bool check_exact = flags.on("exact-match");
  std::vector<double> exact_scores;
  std::map<std::string, int64_t> counts;
  std::vector<double> scores;
  std::string text;
  int64_t unsent = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const CompletionResult &r1 = results[2 * i], &r2 = results[2 * i + 1];
    // An item the spending limit left unjudged is neither scored nor written: a re-run judges it.
    if (not_sent(r1) || not_sent(r2)) {
      ++unsent;
      continue;
    }
    std::string outcome;
    std::optional<double> score;
    if (!r1.ok || !r2.ok) {
      outcome = "failed";
    } else {
      switch (pair_outcome({r1.text, r2.text}, x_as_a)) {
        case PairOutcome::first:
          outcome = "win", score = 1.0;
          break;
        case PairOutcome::second:
          outcome = "loss", score = 0.0;
          break;
        case PairOutcome::tie:
          outcome = "tie", score = 0.5;
          break;
        case PairOutcome::unparsed:
          outcome = "unparsed";
          break;
      }
    }
    ++counts[outcome];
    if (score) scores.push_back(*score);
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    add_string(doc, "prompt", prompts[i], a);
    add_string(doc, "output", outputs[i], a);
    add_string(doc, "reference", references[i], a);
    doc.AddMember("judgments", string_array({r1.ok ? r1.text : "", r2.ok ? r2.text : ""}, a), a);
    add_string(doc, "outcome", outcome, a);
    doc.AddMember("score", score ? rapidjson::Value(*score) : rapidjson::Value(), a);
    if (check_exact) {
      const bool exact = exact_match(outputs[i], references[i]);
      exact_scores.push_back(exact ? 1.0 : 0.0);
      doc.AddMember("exact_match", exact, a);
    }
    if (!r1.ok || !r2.ok) add_string(doc, "error", r1.ok ? r2.error : r1.error, a);
    text += to_json_line(doc) + "\n";
  }
  const size_t failed = report_failures("eval", results);
  if (!out_path.empty()) write_file_atomically(out_path, text);

  rapidjson::Document summary(rapidjson::kObjectType);
  auto& a = summary.GetAllocator();
  const WinRate w = win_rate(scores);
  auto number_or_null = [](double v) {
    return std::isfinite(v) ? rapidjson::Value(v) : rapidjson::Value();
  };
  summary.AddMember("win_rate", number_or_null(w.mean), a);
  summary.AddMember("stderr", number_or_null(w.standard_error), a);
  summary.AddMember("items", static_cast<int64_t>(prompts.size()), a);
  summary.AddMember("judged", w.n, a);
  if (check_exact) {
    const WinRate acc = win_rate(exact_scores);
    summary.AddMember("accuracy", number_or_null(acc.mean), a);
    summary.AddMember("accuracy_stderr", number_or_null(acc.standard_error), a);
    std::fprintf(stderr, "eval: exact-match accuracy %.4f +- %.4f over %lld items\n", acc.mean,
                 acc.standard_error, static_cast<long long>(acc.n));
  }
  for (const char* k : {"win", "tie", "loss", "unparsed", "failed"}) {
    summary.AddMember(rapidjson::StringRef(k), counts[k], a);
  }
  summary.AddMember("not_sent", unsent, a);
  add_usage(summary, client.usage());
  add_spend(summary, client);
  if (!out_path.empty()) add_string(summary, "out", out_path, a);
  std::fprintf(stderr,
               "eval: win rate %.4f +- %.4f over %lld judged items (%lld wins, %lld ties, %lld "
               "losses; "
               "%lld unparsed, %lld failed excluded)\n",
               w.mean, w.standard_error, static_cast<long long>(w.n),
               static_cast<long long>(counts["win"]), static_cast<long long>(counts["tie"]),
               static_cast<long long>(counts["loss"]), static_cast<long long>(counts["unparsed"]),
               static_cast<long long>(counts["failed"]));
  if (generator.truncated() > 0) {
    std::fprintf(stderr, "eval: %lld prompts were cut to --max-prompt-length tokens\n",
                 static_cast<long long>(generator.truncated()));
  }
  std::printf("%s\n", to_json_line(summary).c_str());
  if (limited) {
    std::fprintf(stderr,
                 "eval: the win rate covers the %lld items judged before the limit; %lld were "
                 "not judged\n",
                 static_cast<long long>(prompts.size() - static_cast<size_t>(unsent)),
                 static_cast<long long>(unsent));
    return kSpendLimitExit;
  }
  if (failed > 0) {
    std::fprintf(stderr,
                 "eval: %zu judgments failed; re-run to retry them (the answered ones "
                 "come from the cache)\n",
                 failed);
    return 1;
  }
  return 0;
}

}  // namespace rlaif::cli
