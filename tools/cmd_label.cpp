// `rlaif label`: an LLM critic turns pairs of completions into preference pairs.
#include <cstdio>
#include <map>

#include "algorithms/stop_signals.h"
#include "io/atomic_file.h"
#include "io/datasets.h"
#include "io/jsonl.h"
#include "io/judge.h"
#include "io/llm_client.h"
#include "io/progress.h"
#include "runtime/error.h"
#include "tools/api_flags.h"
#include "tools/commands.h"

namespace rlaif::cli {
namespace {

// Two completions of one prompt: X is the first ("completions"[0], or the sample with
// --against), Y the second ("completions"[1], or the reference).
struct Pair {
  std::string prompt, x, y, item;
};

std::vector<Pair> read_pairs(const std::string& path, const std::string& against) {
  std::map<std::string, std::string> references;
  if (!against.empty()) {
    for (SftExample& e : load_sft_examples(against)) references.emplace(e.prompt, e.completion);
  }
  std::vector<Pair> pairs;
  read_jsonl(path, [&](const rapidjson::Value& r, int64_t line) {
    Pair p;
    p.prompt = jsonl_string(r, "prompt", path, line);
    p.item = path + ":" + std::to_string(line);
    auto it = r.FindMember("completions");
    RLAIF_CHECK(it != r.MemberEnd() && it->value.IsArray(), p.item,
                ": missing array field \"completions\"");
    const auto& c = it->value;
    const rapidjson::SizeType need = against.empty() ? 2 : 1;
    RLAIF_CHECK(c.Size() >= need, p.item, ": \"completions\" holds ", c.Size(),
                " completions; a pair needs ", need == 2 ? "2" : "1 (and --against's reference)");
    for (rapidjson::SizeType i = 0; i < need; ++i) {
      RLAIF_CHECK(c[i].IsString(), p.item, ": \"completions\"[", i, "] is not a string");
    }
    p.x.assign(c[0].GetString(), c[0].GetStringLength());
    if (against.empty()) {
      p.y.assign(c[1].GetString(), c[1].GetStringLength());
    } else {
      auto ref = references.find(p.prompt);
      RLAIF_CHECK(ref != references.end(), p.item, ": ", against,
                  " holds no reference completion for this prompt");
      p.y = ref->second;
    }
    pairs.push_back(std::move(p));
  });
  RLAIF_CHECK(!pairs.empty(), path, ": no pairs");
  return pairs;
}

// PREFS.jsonl -> PREFS.excluded.jsonl
std::string excluded_path(const std::string& out) {
  const std::string ext = ".jsonl";
  if (out.size() > ext.size() && out.compare(out.size() - ext.size(), ext.size(), ext) == 0) {
    return out.substr(0, out.size() - ext.size()) + ".excluded.jsonl";
  }
  return out + ".excluded.jsonl";
}

}  // namespace

int label_main(const std::vector<std::string>& args) {
  Flags flags(
      "label",
      "Ask a critic (any OpenAI-compatible chat API) which of two completions better follows\n"
      "the prompt, and write preference pairs {\"prompt\", \"chosen\", \"rejected\",\n"
      "\"judgments\": [raw answers], \"judgment_a\": [which side each answer saw as (a)]} to\n"
      "--out. --pairs holds {\"prompt\", \"completions\": [x, y, ...]} lines (what `rlaif sample\n"
      "--n 2` writes); with --against FILE (SFT records, e.g. `rlaif distill`'s output) each\n"
      "sample's first completion is paired with the reference completion of its prompt.\n"
      "The critic answers at temperature 0 and is parsed strictly: \"Output (a)\", \"(a)\" or\n"
      "\"a\" (or b), case-insensitively; anything else is unparsed, never guessed.\n"
      "Without --both-orders each pair is shown once, in an order fixed by a hash of the two\n"
      "texts; with it the critic also sees the outputs swapped and a pair is kept only when both\n"
      "answers agree (a disagreement is position bias: a tie). Ties, unparsed answers and failed\n"
      "requests are excluded from --out and written to PREFS.excluded.jsonl with an \"outcome\".\n"
      "Answers are cached as they arrive: a re-run sends nothing twice. At a spending limit\n"
      "(--max-requests, --max-total-tokens) the pairs fully answered are written and the exit\n"
      "status is 3.");
  flags.option("pairs", "", "JSONL of {\"prompt\", \"completions\": [...]} lines", true)
      .option("out", "", "output preference JSONL", true)
      .option("against", "", "SFT file of reference completions to pair the samples with")
      .option("template", "",
              "judge template file (the whole user message) with {instruction}, {output_1} "
              "(shown as (a)) and {output_2}; default: AlpacaEval-style")
      .flag("both-orders", "also ask with the outputs swapped; keep pairs both answers agree on")
      .option("judge-max-tokens", "16", "tokens the critic may answer with");
  declare_api_flags(flags, "critic");
  if (!flags.parse(args)) return 0;
  if (flags.integer("judge-max-tokens") < 1)
    throw UsageError("--judge-max-tokens must be at least 1");
  const std::string out_path = flags.str("out"), side_path = excluded_path(out_path);
  const bool both = flags.on("both-orders");
  ensure_parent_dir(out_path);
  ClientOptions client_options = api_client_options(flags, cache_beside(out_path));
  JudgeTemplate judge =
      flags.str("template").empty()
          ? JudgeTemplate::default_pairwise()
          : JudgeTemplate::from_file(JudgeTemplate::Kind::pairwise, flags.str("template"));
  judge.set_max_tokens(flags.integer("judge-max-tokens"));
  const std::vector<Pair> pairs = read_pairs(flags.str("pairs"), flags.str("against"));

  // Requests in pair order: pair i's start at first[i]; x_as_a[i] says where X was shown.
  std::vector<CompletionRequest> requests;
  std::vector<size_t> first;
  std::vector<std::vector<bool>> x_as_a(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    const Pair& p = pairs[i];
    first.push_back(requests.size());
    for (CompletionRequest& r : pair_requests(judge, p.prompt, p.x, p.y, both, p.item, x_as_a[i]))
      requests.push_back(std::move(r));
  }

  if (flags.on("dry-run")) {
    print_dry_run("label",
                  estimate_spend(requests, client_options.model, client_options.cache_path));
    return 0;
  }

  StopSignals stop;
  LlmClient client(client_options);
  client.set_stop_check([&] { return stop.pending() != 0; });
  Progress progress("label", static_cast<int64_t>(requests.size()), "judgments");
  int64_t done = 0;
  const std::vector<CompletionResult> results = client.complete_all(
      requests, [&](size_t, const CompletionResult&) { progress.update(++done); });
  progress.finish();
  std::fprintf(stderr, "label: %s\n", client.usage_summary().c_str());
  const bool limited = report_spend("label", client);
  if (stop.pending() != 0) {
    std::fprintf(stderr,
                 "label: interrupted; the answers so far are cached in %s: re-run to "
                 "continue\n",
                 client_options.cache_path.c_str());
    return 128 + stop.pending();
  }

  std::string prefs_text, side_text;
  std::map<PairOutcome, int64_t> counts;
  int64_t failed = 0, unsent = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const Pair& p = pairs[i];
    // A pair the spending limit left unasked is in neither file: a re-run labels it.
    bool asked = true;
    for (size_t j = 0; j < x_as_a[i].size(); ++j) asked = asked && !not_sent(results[first[i] + j]);
    if (!asked) {
      ++unsent;
      continue;
    }
    std::vector<std::string> answers;
    std::string error;
    for (size_t j = 0; j < x_as_a[i].size(); ++j) {
      const CompletionResult& r = results[first[i] + j];
      if (!r.ok && error.empty()) error = r.error;
      answers.push_back(r.ok ? r.text : "");
    }
    const PairOutcome outcome =
        error.empty() ? pair_outcome(answers, x_as_a[i]) : PairOutcome::unparsed;
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    add_string(doc, "prompt", p.prompt, a);
    if (error.empty() && (outcome == PairOutcome::first || outcome == PairOutcome::second)) {
      ++counts[outcome];
      const bool x_wins = outcome == PairOutcome::first;
      add_string(doc, "chosen", x_wins ? p.x : p.y, a);
      add_string(doc, "rejected", x_wins ? p.y : p.x, a);
      doc.AddMember("judgments", string_array(answers, a), a);
      std::vector<std::string> sides;
      for (bool x_a : x_as_a[i]) sides.push_back(x_a == x_wins ? "chosen" : "rejected");
      doc.AddMember("judgment_a", string_array(sides, a), a);
      prefs_text += to_json_line(doc) + "\n";
      continue;
    }
    if (error.empty()) {
      ++counts[outcome];
    } else {
      ++failed;
    }
    doc.AddMember("completions", string_array({p.x, p.y}, a), a);
    add_string(doc, "outcome", error.empty() ? pair_outcome_name(outcome) : "failed", a);
    doc.AddMember("judgments", string_array(answers, a), a);
    std::vector<std::string> sides;
    for (bool x_a : x_as_a[i]) sides.push_back(x_a ? "first" : "second");
    doc.AddMember("judgment_a", string_array(sides, a), a);
    if (!error.empty()) add_string(doc, "error", error, a);
    side_text += to_json_line(doc) + "\n";
  }
  report_failures("label", results);
  write_file_atomically(out_path, prefs_text);
  write_file_atomically(side_path, side_text);

  const int64_t kept = counts[PairOutcome::first] + counts[PairOutcome::second];
  std::fprintf(stderr,
               "label: %lld preference pairs written to %s (first preferred %lld, second %lld); "
               "%lld ties, %lld unparsed, %lld failed in %s\n",
               static_cast<long long>(kept), out_path.c_str(),
               static_cast<long long>(counts[PairOutcome::first]),
               static_cast<long long>(counts[PairOutcome::second]),
               static_cast<long long>(counts[PairOutcome::tie]),
               static_cast<long long>(counts[PairOutcome::unparsed]),
               static_cast<long long>(failed), side_path.c_str());
  rapidjson::Document summary(rapidjson::kObjectType);
  auto& a = summary.GetAllocator();
  summary.AddMember("pairs", static_cast<int64_t>(pairs.size()), a);
  summary.AddMember("written", kept, a);
  summary.AddMember("chosen_first", counts[PairOutcome::first], a);
  summary.AddMember("chosen_second", counts[PairOutcome::second], a);
  summary.AddMember("ties", counts[PairOutcome::tie], a);
  summary.AddMember("unparsed", counts[PairOutcome::unparsed], a);
  summary.AddMember("failed", failed, a);
  summary.AddMember("not_sent", unsent, a);
  add_usage(summary, client.usage());
  add_spend(summary, client);
  add_string(summary, "out", out_path, a);
  add_string(summary, "excluded", side_path, a);
  std::printf("%s\n", to_json_line(summary).c_str());
  if (limited) {
    std::fprintf(stderr, "label: %lld pairs not asked for are in neither file\n",
                 static_cast<long long>(unsent));
    return kSpendLimitExit;
  }
  if (failed > 0) {
    std::fprintf(stderr,
                 "label: %lld pairs failed (see %s); re-run to retry them (the answered ones come "
                 "from the cache)\n",
                 static_cast<long long>(failed), side_path.c_str());
    return 1;
  }
  return 0;
}

}  // namespace rlaif::cli
