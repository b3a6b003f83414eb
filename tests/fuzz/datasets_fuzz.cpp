// Fuzzes the dataset readers every command uses (io/datasets.h over io/jsonl.h): SFT, preference,
// labelled (KTO) and prompt files, as JSONL and as a JSON array. The first byte picks the reader
// and the file's extension; the rest is the file.
#include "io/datasets.h"
#include "io/jsonl.h"
#include "runtime/error.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rlaif;
  if (size == 0) return 0;
  const uint8_t choice = data[0];
  const std::string name = (choice & 0x80) ? "data.json" : "data.jsonl";
  const std::string path = fuzz::scratch().write(name, fuzz::as_text(data + 1, size - 1));
  try {
    switch (choice % 8) {
      case 0:
        for (const SftExample& e : load_sft_examples(path)) (void)e.messages.size();
        break;
      case 1:
        (void)unpair_preferences(load_preferences(path));
        break;
      case 2:
        (void)load_preferences(path, "margin");
        break;
      case 3:
        (void)load_labeled_completions(path);
        break;
      case 4:
        for (const Conversation& c : load_prompt_conversations(path)) (void)prompt_text(c);
        break;
      case 5:
        (void)load_prompt_records(path);
        (void)is_preference_file(path);
        break;
      case 6:
        (void)load_prompts(path);
        break;
      case 7:
        // The raw JSONL layer, as the commands that read their own records use it.
        (void)count_complete_lines(path);
        read_jsonl(path, [&](const rapidjson::Value& record, int64_t line) {
          (void)to_json_line(record);
          (void)jsonl_string(record, "prompt", path, line);
        });
        break;
    }
  } catch (const Error&) {
  }
  return 0;
}
