// Fuzzes the Hugging Face tokenizer loaders (io/hf_tokenizer.h) and what a loaded tokenizer does
// with text. The first byte picks the format, the rest holds files separated by
// fuzz::kPartSeparator:
//   even first byte: tokenizer.json, tokenizer_config.json, generation_config.json, TEXT
//   odd first byte:  vocab.json, merges.txt, tokenizer_config.json, TEXT
// A part left out leaves its file absent (for the configs). A tokenizer that loads encodes TEXT
// with and without special tokens and decodes the ids both ways.
#include "io/tokenizer.h"
#include "runtime/error.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rlaif;
  if (size == 0) return 0;
  const bool gpt2_files = data[0] % 2 == 1;
  const fuzz::ScratchDir& dir = fuzz::scratch();
  dir.clear();
  std::vector<std::string_view> parts =
      fuzz::split_parts(fuzz::as_text(data + 1, size - 1), fuzz::kPartSeparator, 4);
  const char* names[3] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json"};
  if (gpt2_files) {
    names[0] = "vocab.json";
    names[1] = "merges.txt";
    names[2] = "tokenizer_config.json";
  }
  // Both GPT-2 files must exist for load_dir to pick that format.
  if (gpt2_files && parts.size() < 2) parts.push_back("");
  for (size_t i = 0; i < parts.size() && i < 3; ++i) dir.write(names[i], parts[i]);
  const std::string_view text = parts.size() == 4 ? parts[3] : std::string_view("Hello, world!");
  try {
    const Tokenizer tokenizer = Tokenizer::load_dir(dir.str());
    for (bool specials : {false, true}) {
      std::vector<int32_t> ids = tokenizer.encode(text, specials);
      for (int32_t id : ids) {
        if (id < 0 || id >= tokenizer.vocab_size()) __builtin_trap();
        (void)tokenizer.piece(id);
      }
      (void)tokenizer.decode(ids, true);
      (void)tokenizer.decode(ids, false);
    }
    (void)tokenizer.token_id(text);
    (void)tokenizer.piece_to_id(text);
  } catch (const Error&) {
  }
  return 0;
}
