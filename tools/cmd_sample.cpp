// `rlaif sample`: K completions per prompt from a local model, for a critic to label.
#include <algorithm>
#include <cstdio>

#include "io/datasets.h"
#include "io/jsonl.h"
#include "io/progress.h"
#include "runtime/error.h"
#include "tools/api_flags.h"
#include "tools/chat_flags.h"
#include "tools/commands.h"
#include "tools/local_generation.h"

namespace rlaif::cli {

int sample_main(const std::vector<std::string>& args) {
  Flags flags(
      "sample",
      "Sample --n completions for every prompt from a local model and write\n"
      "{\"prompt\": ..., \"completions\": [...]} lines to --out (what `rlaif label --pairs`\n"
      "reads). Prompts are rendered with --chat-template. Completion j of prompt i is sampled\n"
      "on stream i*n + j, so --batch never changes the samples. Lines are written in the\n"
      "prompts' order, each flushed as it is written; a re-run continues after the last\n"
      "complete line of --out.");
  flags.option("prompts", "", "prompts file: JSONL or JSON ({\"prompt\"} or Alpaca records)", true)
      .option("out", "", "output JSONL file", true)
      .option("n", "2", "completions per prompt")
      .option("limit", "0", "use only the first N prompts (0 = all)");
  declare_generation_flags(flags, "1.0", "256");
  if (!flags.parse(args)) return 0;
  const int64_t n = flags.integer("n"), limit = flags.integer("limit");
  if (n < 1) throw UsageError("--n must be at least 1");
  if (limit < 0) throw UsageError("--limit must not be negative");
  const std::string in_path = flags.str("prompts"), out_path = flags.str("out");

  std::vector<Conversation> conversations = load_prompt_conversations(in_path);
  if (limit > 0 && static_cast<size_t>(limit) < conversations.size()) conversations.resize(limit);
  std::vector<std::string> prompts;  // as the output names them (io/datasets.h's prompt text)
  for (const Conversation& c : conversations) prompts.push_back(prompt_text(c));
  ensure_parent_dir(out_path);
  truncate_to_complete_lines(out_path);
  const int64_t already = count_complete_lines(out_path);
  RLAIF_CHECK(already <= static_cast<int64_t>(prompts.size()), out_path, " has ", already,
              " lines but ", in_path, " only ", prompts.size(), " prompts: wrong --out?");
  if (already > 0) {
    // The lines already there must be these prompts' samples, in order.
    read_jsonl(out_path, [&](const rapidjson::Value& r, int64_t line) {
      const std::string p = jsonl_string(r, "prompt", out_path, line);
      RLAIF_CHECK(line <= already && p == prompts[static_cast<size_t>(line - 1)], out_path, ":",
                  line, ": holds another prompt than record ", line, " of ", in_path,
                  ": wrong --out?");
    });
    std::fprintf(stderr, "%s: %lld prompts already done, continuing\n", out_path.c_str(),
                 static_cast<long long>(already));
  }

  LocalGenerator generator(flags);
  JsonlWriter writer(out_path, /*append=*/true);
  Progress progress("sample", static_cast<int64_t>(prompts.size()), "prompts");
  const int64_t total = static_cast<int64_t>(prompts.size());
  int64_t tokens = 0, stopped = 0, sequences = 0;
  // Every remaining prompt's n sequences, generated continuously; the lines are written in the
  // prompts' order as soon as every completion of the next prompt is in.
  std::vector<Conversation> sequences_in;
  std::vector<uint64_t> streams;
  for (int64_t i = already; i < total; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      sequences_in.push_back(conversations[static_cast<size_t>(i)]);
      streams.push_back(static_cast<uint64_t>(i * n + j));
    }
  }
  std::vector<std::string> texts(sequences_in.size());
  std::vector<int64_t> missing(static_cast<size_t>(total - already), n);
  int64_t next_line = already;
  generator.generate(sequences_in, streams, [&](size_t k, LocalCompletion c) {
    texts[k] = std::move(c.text);
    tokens += c.tokens;
    stopped += c.stopped;
    ++sequences;
    --missing[k / static_cast<size_t>(n)];
    for (; next_line < total && missing[static_cast<size_t>(next_line - already)] == 0;
         ++next_line) {
      const auto first = static_cast<size_t>((next_line - already) * n);
      std::vector<std::string> completions(texts.begin() + static_cast<std::ptrdiff_t>(first),
                                           texts.begin() + static_cast<std::ptrdiff_t>(first + n));
      rapidjson::Document doc(rapidjson::kObjectType);
      add_string(doc, "prompt", prompts[static_cast<size_t>(next_line)], doc.GetAllocator());
      doc.AddMember("completions", string_array(completions, doc.GetAllocator()),
                    doc.GetAllocator());
      writer.write(doc);
      for (size_t t = first; t < first + static_cast<size_t>(n); ++t) texts[t].clear();
      progress.update(next_line + 1, tokens);
    }
  });
  progress.finish();
  if (generator.truncated() > 0) {
    std::fprintf(stderr, "sample: %lld prompts were cut to --max-prompt-length tokens\n",
                 static_cast<long long>(generator.truncated()));
  }
  std::printf(
      "{\"prompts\": %zu, \"resumed_after\": %lld, \"sequences\": %lld, \"stopped_at_eos\": %lld, "
      "\"tokens\": %lld}\n",
      prompts.size(), static_cast<long long>(already), static_cast<long long>(sequences),
      static_cast<long long>(stopped), static_cast<long long>(tokens));
  return 0;
}

}  // namespace rlaif::cli
