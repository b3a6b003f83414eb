// `rlaif generate`: text from a model, for one prompt (stdout) or a JSONL file of prompts
// (batched, resumable: a re-run continues after the last completed line of --out).
#include <rapidjson/document.h>

#include <cstdio>
#include <optional>

#include "algorithms/sequences.h"
#include "io/chat_template.h"
#include "io/jsonl.h"
#include "io/model_dir.h"
#include "io/progress.h"
#include "io/tokenizer.h"
#include "model/continuous_generation.h"
#include "model/generate.h"
#include "tools/chat_flags.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"
#include "tools/lora_flags.h"
#include "tools/train_flags.h"

namespace rlaif::cli {
namespace {

// A raw prompt: BOS when the tokenizer adds one (as Hugging Face's encode does), never EOS.
std::vector<int32_t> raw_prompt_tokens(const Tokenizer& tok, const std::string& text) {
  std::vector<int32_t> ids;
  if (tok.adds_bos() && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
  std::vector<int32_t> body = tok.encode(text, false);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

std::string completion_text(const Tokenizer& tok, const Generation& g) {
  std::vector<int32_t> ids = g.tokens;
  if (g.stopped_at_eos && !ids.empty()) ids.pop_back();
  return tok.decode(ids);
}

}  // namespace

int generate_main(const std::vector<std::string>& args) {
  Flags flags(
      "generate",
      "Generate text with a model. --prompt prints one continuation to stdout;\n"
      "--prompts FILE.jsonl ({\"prompt\": ...} per line) writes {\"prompt\", \"completion\"}\n"
      "lines to --out, batched, continuing after the last completed line on a re-run.");
  flags.option("model", "", "model directory", true)
      .option("prompt", "", "prompt text (BOS is prepended when the tokenizer adds one)")
      .option("prompts", "", "JSONL file of prompts")
      .option("out", "", "output JSONL file (with --prompts)")
      .option("max-new-tokens", "256", "tokens to generate at most")
      .option("temperature", "1.0", "sampling temperature (0 = greedy)")
      .option("top-k", "0", "sample from the k most likely tokens (0 = all)")
      .option("top-p", "1.0", "nucleus sampling threshold")
      .option("seed", "0", "sampling seed")
      .option("batch", "8", "prompts generated together (with --prompts)")
      .flag("chat", "render each prompt as a user turn of the chat template")
      .option("device", "cpu", "cpu or cuda[:N]")
      .option("dtype", "f32", "parameter dtype: f32, or bf16 (GPU only)");
  declare_chat_template_flag(flags);
  declare_adapter_flag(flags);
  if (!flags.parse(args)) return 0;
  const bool single = flags.given("prompt");
  if (single == flags.given("prompts"))
    throw UsageError("give exactly one of --prompt and --prompts");
  if (!single && flags.str("out").empty()) throw UsageError("--prompts needs --out");

  Transformer model =
      load_model(flags.str("model"), parse_device(flags.str("device")), model_dtype(flags));
  apply_adapter_flag(model, flags);
  Tokenizer tok = Tokenizer::load_dir(flags.str("model"));
  const ChatTemplate chat = chat_template_from_flags(flags, flags.str("model"));
  auto prompt_tokens = [&](const std::string& p) {
    return flags.on("chat") ? tokenize_prompt(tok, chat, p, INT64_MAX) : raw_prompt_tokens(tok, p);
  };

  GenerationOptions options;
  options.max_new_tokens = flags.integer("max-new-tokens");
  options.sampling.temperature = static_cast<float>(flags.number("temperature"));
  options.sampling.top_k = flags.integer("top-k");
  options.sampling.top_p = static_cast<float>(flags.number("top-p"));
  options.sampling.seed = static_cast<uint64_t>(flags.integer("seed"));
  options.eos_ids = generation_stop_ids(model.config(), tok);

  if (single) {
    std::vector<Generation> out = generate(model, {prompt_tokens(flags.str("prompt"))}, options);
    std::string text = completion_text(tok, out[0]);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    return 0;
  }

  std::vector<std::string> prompts;
  const std::string in_path = flags.str("prompts"), out_path = flags.str("out");
  read_jsonl(in_path, [&](const rapidjson::Value& r, int64_t line) {
    prompts.push_back(jsonl_string(r, "prompt", in_path, line));
  });
  truncate_to_complete_lines(out_path);
  const int64_t already = count_complete_lines(out_path);
  RLAIF_CHECK(already <= static_cast<int64_t>(prompts.size()), out_path, " has ", already,
              " lines but ", in_path, " only ", prompts.size(), " prompts: wrong --out?");
  if (already > 0)
    std::fprintf(stderr, "%s: %lld prompts already done, continuing\n", out_path.c_str(),
                 static_cast<long long>(already));
  JsonlWriter writer(out_path, /*append=*/true);
  Progress progress("generate", static_cast<int64_t>(prompts.size()), "prompts");
  const int64_t batch = std::max<int64_t>(1, flags.integer("batch"));
  const auto total = static_cast<int64_t>(prompts.size());
  int64_t tokens = 0;
  // Generated continuously, `batch` at a time; the lines are written in the prompts' order as
  // soon as the next one is done. A prompt's stream is its line: batching-proof.
  std::vector<std::vector<int32_t>> prompt_ids;
  std::vector<uint64_t> streams;
  for (int64_t i = already; i < total; ++i) {
    prompt_ids.push_back(prompt_tokens(prompts[static_cast<size_t>(i)]));
    streams.push_back(static_cast<uint64_t>(i));
  }
  std::vector<std::optional<Generation>> finished(prompt_ids.size());
  int64_t next_line = already;
  generate_continuously(model, prompt_ids, options, streams, batch, [&](size_t k, Generation g) {
    tokens += static_cast<int64_t>(g.tokens.size());
    finished[k] = std::move(g);
    for (; next_line < total && finished[static_cast<size_t>(next_line - already)]; ++next_line) {
      std::optional<Generation>& done = finished[static_cast<size_t>(next_line - already)];
      rapidjson::Document doc(rapidjson::kObjectType);
      auto& a = doc.GetAllocator();
      const std::string& p = prompts[static_cast<size_t>(next_line)];
      std::string completion = completion_text(tok, *done);
      doc.AddMember("prompt",
                    rapidjson::Value(p.c_str(), static_cast<rapidjson::SizeType>(p.size()), a), a);
      doc.AddMember("completion",
                    rapidjson::Value(completion.c_str(),
                                     static_cast<rapidjson::SizeType>(completion.size()), a),
                    a);
      doc.AddMember("finish_reason", rapidjson::StringRef(done->stopped_at_eos ? "stop" : "length"),
                    a);
      writer.write(doc);
      done->tokens.clear();
      progress.update(next_line + 1, tokens);
    }
  });
  progress.finish();
  return 0;
}

}  // namespace rlaif::cli
