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
      "on stream i*n + j, so --batch never changes the samples. Each line is flushed as it is\n"
      "written; a re-run continues after the last complete line of --out.");
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
  const int64_t per_call = std::max<int64_t>(1, generator.batch() / n);
  const int64_t total = static_cast<int64_t>(prompts.size());
  int64_t tokens = 0, stopped = 0, sequences = 0;
  for (int64_t start = already; start < total; start += per_call) {
    const int64_t end = std::min(start + per_call, total);
    std::vector<Conversation> batch;
    std::vector<uint64_t> streams;
    for (int64_t i = start; i < end; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        batch.push_back(conversations[static_cast<size_t>(i)]);
        streams.push_back(static_cast<uint64_t>(i * n + j));
      }
    }
    const std::vector<LocalCompletion> out = generator.generate(batch, streams);
    for (int64_t i = start; i < end; ++i) {
      std::vector<std::string> completions;
      for (int64_t j = 0; j < n; ++j) {
        const LocalCompletion& c = out[static_cast<size_t>((i - start) * n + j)];
        completions.push_back(c.text);
        tokens += c.tokens;
        stopped += c.stopped;
        ++sequences;
      }
      rapidjson::Document doc(rapidjson::kObjectType);
      add_string(doc, "prompt", prompts[static_cast<size_t>(i)], doc.GetAllocator());
      doc.AddMember("completions", string_array(completions, doc.GetAllocator()),
                    doc.GetAllocator());
      writer.write(doc);
    }
    progress.update(end, tokens);
  }
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
