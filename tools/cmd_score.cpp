// `rlaif score`: rewards of answers under a reward model, one JSON line per record.
#include <rapidjson/document.h>

#include <cstdio>
#include <memory>

#include "algorithms/reward.h"
#include "io/chat_template.h"
#include "io/datasets.h"
#include "io/jsonl.h"
#include "io/model_dir.h"
#include "tools/chat_flags.h"
#include "tools/commands.h"
#include "tools/lora_flags.h"
#include "tools/output_flags.h"
#include "tools/preference_flags.h"

namespace rlaif::cli {

int score_main(const std::vector<std::string>& args) {
  Flags flags("score",
              "Score answers with a reward model (see `rlaif rm`). --data holds prompt/completion\n"
              "records (or messages, or Alpaca's instruction/output): each gets {\"index\",\n"
              "\"prompt\", \"completion\", \"reward\"}; or preference records: each gets\n"
              "{\"index\", \"prompt\", \"chosen\", \"rejected\", \"chosen_reward\",\n"
              "\"rejected_reward\"}. Lines go to --out, or to stdout; a summary goes to stderr.");
  flags.option("model", "", "reward model directory (with score.weight)", true)
      .option("data", "", "JSONL or JSON file of SFT or preference records", true)
      .option("out", "", "output JSONL file (default: stdout)")
      .option("batch", "8", "sequences per forward pass")
      .option("max-length", "512",
              "tokens per sequence at most (capped at the model's context "
              "when not given)")
      .option("max-prompt-length", "256", "prompt tokens at most (cut from the left)")
      .option("device", "cpu", "cpu or cuda[:N]");
  declare_chat_template_flag(flags);
  declare_adapter_flag(flags);
  declare_overwrite_flag(flags);
  if (!flags.parse(args)) return 0;
  if (flags.integer("batch") <= 0) throw UsageError("--batch must be positive");
  check_outputs_free(flags, {flags.str("out")});

  const std::string model_dir = flags.str("model");
  Transformer model = load_model(model_dir, parse_device(flags.str("device")));
  apply_adapter_flag(model, flags);
  RLAIF_CHECK(model.has_scalar_head(), model_dir,
              " has no scalar head (score.weight): it is not a reward model; train one with "
              "`rlaif rm`");
  const Tokenizer tokenizer = Tokenizer::load_dir(model_dir);
  const ChatTemplate chat = chat_template_from_flags(flags, model_dir);
  const TruncationOptions truncation = truncation_from_flags(flags, model.config());
  const int64_t context = model.config().max_position_embeddings;
  RLAIF_CHECK(truncation.max_length <= context, "--max-length ", truncation.max_length,
              " exceeds the model's context of ", context);

  const std::string path = flags.str("data");
  const bool preferences = is_preference_file(path);
  std::vector<TokenizedExample> examples;  // preferences: chosen and rejected interleaved
  std::vector<PreferencePair> pairs;
  std::vector<SftExample> singles;
  if (preferences) {
    pairs = load_preferences(path);
    for (const PreferencePair& p : pairs) {
      examples.push_back(tokenize_reply(tokenizer, chat, p.prompt_messages, p.chosen, truncation));
      examples.push_back(
          tokenize_reply(tokenizer, chat, p.prompt_messages, p.rejected, truncation));
    }
  } else {
    singles = load_sft_examples(path);
    for (const SftExample& e : singles) {
      Conversation prompt(e.messages.begin(), e.messages.end() - 1);
      examples.push_back(tokenize_reply(tokenizer, chat, prompt, e.completion, truncation));
    }
  }
  const std::vector<double> rewards = score_examples(model, examples, flags.integer("batch"));

  std::unique_ptr<JsonlWriter> writer;
  if (!flags.str("out").empty()) writer = std::make_unique<JsonlWriter>(flags.str("out"), false);
  auto emit = [&](const rapidjson::Document& d) {
    if (writer) {
      writer->write(d);
    } else {
      std::printf("%s\n", to_json_line(d).c_str());
    }
  };
  auto text = [](const std::string& s, rapidjson::Document& d) {
    return rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()),
                            d.GetAllocator());
  };
  double total = 0.0, correct = 0.0;
  const size_t records = preferences ? pairs.size() : singles.size();
  for (size_t i = 0; i < records; ++i) {
    rapidjson::Document d(rapidjson::kObjectType);
    auto& a = d.GetAllocator();
    d.AddMember("index", static_cast<uint64_t>(i), a);
    if (preferences) {
      const double c = rewards[2 * i], r = rewards[2 * i + 1];
      d.AddMember("prompt", text(pairs[i].prompt, d), a);
      d.AddMember("chosen", text(pairs[i].chosen, d), a);
      d.AddMember("rejected", text(pairs[i].rejected, d), a);
      d.AddMember("chosen_reward", c, a);
      d.AddMember("rejected_reward", r, a);
      total += c + r;
      correct += c > r;
    } else {
      d.AddMember("prompt", text(singles[i].prompt, d), a);
      d.AddMember("completion", text(singles[i].completion, d), a);
      d.AddMember("reward", rewards[i], a);
      total += rewards[i];
    }
    emit(d);
  }
  std::fflush(stdout);
  const double n = static_cast<double>(examples.size());
  if (preferences) {
    std::fprintf(stderr, "score: %zu pairs, mean reward %.4f, accuracy (chosen > rejected) %.4f\n",
                 records, total / n, correct / static_cast<double>(records));
  } else {
    std::fprintf(stderr, "score: %zu examples, mean reward %.4f\n", records, total / n);
  }
  return 0;
}

}  // namespace rlaif::cli
