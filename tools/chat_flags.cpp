#include "tools/chat_flags.h"

#include <cstdio>

#include "io/datasets.h"
#include "runtime/error.h"

namespace rlaif::cli {

void declare_chat_template_flag(Flags& flags) {
  flags.option("chat-template", "",
               "prompt format: a .jinja file, or a text with {prompt} (\\n, \\t and \\\\ "
               "escapes allowed); default: the model directory's own chat template, else "
               "\"Human: {prompt}\\n\\nAssistant: \"");
}

ChatTemplate chat_template_from_flags(const Flags& flags, const std::string& model_dir,
                                      const char* command) {
  ChatTemplate chat;
  try {
    chat = ChatTemplate::for_model(model_dir, flags.str("chat-template"));
  } catch (const Error& e) {
    if (!flags.given("chat-template")) throw;
    throw UsageError(std::string("--chat-template: ") + e.what());
  }
  if (command) std::fprintf(stderr, "%s: prompts use %s\n", command, chat.describe().c_str());
  return chat;
}

std::vector<std::string> load_single_turn_prompts(const std::string& path, const ChatTemplate& chat,
                                                  const char* command) {
  if (!chat.is_jinja()) return load_prompts(path);
  std::vector<std::string> out;
  const std::vector<Conversation> prompts = load_prompt_conversations(path);
  for (size_t i = 0; i < prompts.size(); ++i) {
    RLAIF_CHECK(prompts[i].size() == 1, path, ": prompt ", i + 1, " has ", prompts[i].size(),
                " turns; `rlaif ", command,
                "` renders each prompt as one user turn of the model's chat template, so it "
                "takes single-turn prompts only");
    out.push_back(prompts[i][0].content);
  }
  return out;
}

void print_training_sequence(const Tokenizer& tokenizer, const TokenizedExample& example,
                             const char* command) {
  std::vector<int32_t> ids = example.prompt;
  ids.insert(ids.end(), example.completion.begin(), example.completion.end());
  const size_t prompt = example.prompt.size();
  auto trained = [&](size_t i) {
    if (i == 0) return false;  // no position predicts the first token
    if (i >= prompt) return true;
    return !example.prompt_trained.empty() && example.prompt_trained[i] != 0;
  };
  std::string text;
  std::vector<int32_t> run;
  bool run_trained = false;
  auto flush = [&] {
    if (run.empty()) return;
    const std::string piece = tokenizer.decode(run, /*skip_special_tokens=*/false);
    text += run_trained ? "⟦" + piece + "⟧" : piece;
    run.clear();
  };
  for (size_t i = 0; i < ids.size(); ++i) {
    if (trained(i) != run_trained) flush();
    run_trained = trained(i);
    run.push_back(ids[i]);
  }
  flush();
  std::fprintf(stderr, "%s: first training sequence (%zu tokens, trained ones between ⟦ ⟧):\n%s\n",
               command, ids.size(), text.c_str());
}

}  // namespace rlaif::cli
