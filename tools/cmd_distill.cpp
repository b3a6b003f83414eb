// `rlaif distill`: a teacher's completions over the API become SFT demonstrations.
#include <cstdio>
#include <map>

#include "algorithms/stop_signals.h"
#include "io/atomic_file.h"
#include "io/datasets.h"
#include "io/jsonl.h"
#include "io/llm_client.h"
#include "io/progress.h"
#include "tools/api_flags.h"
#include "tools/commands.h"

namespace rlaif::cli {

int distill_main(const std::vector<std::string>& args) {
  Flags flags(
      "distill",
      "Ask a teacher model (any OpenAI-compatible chat API) to answer every prompt and write\n"
      "its answers as SFT demonstrations: {\"prompt\", \"completion\"} lines in --out.\n"
      "--prompts holds {\"prompt\": ...} records, or Alpaca's {\"instruction\", \"input\"}\n"
      "(prompt = instruction, then a blank line and the input when there is one), as JSONL or\n"
      "a JSON array. Completions whose finish_reason is not \"stop\" (cut by --max-tokens or\n"
      "filtered) are dropped and counted, as Sharma et al. (2024) do. Every answer is appended\n"
      "to the request cache as it arrives; --out is written (atomically) once all are in, so a\n"
      "re-run after Ctrl-C, a crash or an exhausted quota resends nothing. At a spending\n"
      "limit (--max-requests, --max-total-tokens) the answers so far are written and the exit\n"
      "status is 3.");
  flags.option("prompts", "", "prompts file (JSONL or JSON)", true)
      .option("out", "", "output SFT JSONL file", true)
      .option("system", "", "system message sent before each prompt (none when empty)")
      .option("temperature", "0", "the teacher's sampling temperature")
      .option("max-tokens", "512", "tokens the teacher may write per answer")
      .option("limit", "0", "use only the first N prompts (0 = all)");
  declare_api_flags(flags, "teacher");
  if (!flags.parse(args)) return 0;
  const double temperature = flags.number("temperature");
  const int64_t max_tokens = flags.integer("max-tokens"), limit = flags.integer("limit");
  if (temperature < 0) throw UsageError("--temperature must not be negative");
  if (max_tokens < 1) throw UsageError("--max-tokens must be at least 1");
  if (limit < 0) throw UsageError("--limit must not be negative");
  const std::string prompts_path = flags.str("prompts"), out_path = flags.str("out");
  ensure_parent_dir(out_path);
  ClientOptions client_options = api_client_options(flags, cache_beside(out_path));

  std::vector<std::string> prompts = load_prompts(prompts_path);
  if (limit > 0 && static_cast<size_t>(limit) < prompts.size()) prompts.resize(limit);
  std::vector<CompletionRequest> requests;
  for (size_t i = 0; i < prompts.size(); ++i) {
    CompletionRequest r;
    if (!flags.str("system").empty()) r.messages.push_back({"system", flags.str("system")});
    r.messages.push_back({"user", prompts[i]});
    r.temperature = temperature;
    r.max_tokens = max_tokens;
    r.item = prompts_path + " record " + std::to_string(i + 1);
    requests.push_back(std::move(r));
  }

  if (flags.on("dry-run")) {
    print_dry_run("distill",
                  estimate_spend(requests, client_options.model, client_options.cache_path));
    return 0;
  }

  StopSignals stop;
  LlmClient client(client_options);
  client.set_stop_check([&] { return stop.pending() != 0; });
  Progress progress("distill", static_cast<int64_t>(requests.size()), "prompts");
  int64_t done = 0, tokens = 0;
  std::vector<CompletionResult> results =
      client.complete_all(requests, [&](size_t, const CompletionResult& r) {
        tokens += r.completion_tokens;
        progress.update(++done, tokens);
      });
  progress.finish();
  std::fprintf(stderr, "distill: %s\n", client.usage_summary().c_str());
  const bool limited = report_spend("distill", client);
  if (stop.pending() != 0) {
    std::fprintf(stderr,
                 "distill: interrupted; the answers so far are in the cache %s: re-run to "
                 "continue\n",
                 client_options.cache_path.c_str());
    return 128 + stop.pending();
  }

  std::string text;
  int64_t kept = 0, unsent = 0;
  std::map<std::string, int64_t> dropped;  // by finish_reason
  for (size_t i = 0; i < results.size(); ++i) {
    const CompletionResult& r = results[i];
    unsent += not_sent(r);
    if (!r.ok) continue;
    if (r.finish_reason != "stop") {
      ++dropped[r.finish_reason.empty() ? "(none)" : r.finish_reason];
      continue;
    }
    rapidjson::Document doc(rapidjson::kObjectType);
    add_string(doc, "prompt", prompts[i], doc.GetAllocator());
    add_string(doc, "completion", r.text, doc.GetAllocator());
    text += to_json_line(doc) + "\n";
    ++kept;
  }
  const size_t failed = report_failures("distill", results);
  write_file_atomically(out_path, text);

  int64_t dropped_total = 0;
  rapidjson::Document summary(rapidjson::kObjectType);
  auto& a = summary.GetAllocator();
  rapidjson::Value by_reason(rapidjson::kObjectType);
  for (const auto& [reason, n] : dropped) {
    dropped_total += n;
    by_reason.AddMember(rapidjson::Value(reason.c_str(), a), rapidjson::Value(n), a);
  }
  std::fprintf(stderr, "distill: %lld demonstrations written to %s, %lld dropped, %zu failed\n",
               static_cast<long long>(kept), out_path.c_str(),
               static_cast<long long>(dropped_total), failed);
  summary.AddMember("prompts", static_cast<int64_t>(prompts.size()), a);
  summary.AddMember("written", kept, a);
  summary.AddMember("dropped", dropped_total, a);
  summary.AddMember("dropped_by_reason", by_reason, a);
  summary.AddMember("failed", static_cast<int64_t>(failed), a);
  summary.AddMember("not_sent", unsent, a);
  add_usage(summary, client.usage());
  add_spend(summary, client);
  add_string(summary, "out", out_path, a);
  std::printf("%s\n", to_json_line(summary).c_str());
  if (limited) {
    std::fprintf(stderr, "distill: %lld prompts not sent are missing from %s\n",
                 static_cast<long long>(unsent), out_path.c_str());
    return kSpendLimitExit;
  }
  if (failed > 0) {
    std::fprintf(stderr,
                 "distill: %zu prompts failed and are missing from %s; re-run to retry them "
                 "(the answered ones come from the cache)\n",
                 failed, out_path.c_str());
    return 1;
  }
  return 0;
}

}  // namespace rlaif::cli
