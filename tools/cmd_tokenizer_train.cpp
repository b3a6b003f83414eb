// `rlaif tokenizer train`: a SentencePiece tokenizer (Llama conventions, see io/tokenizer_train.h)
// trained on a plain text file.
#include <cstdio>

#include "io/tokenizer_train.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"
#include "tools/output_flags.h"

namespace rlaif::cli {

int tokenizer_train_main(const std::vector<std::string>& args) {
  Flags flags("tokenizer train",
              "Train a SentencePiece tokenizer on a plain text file (one training sentence per\n"
              "line) with Llama's conventions: unk=0, bos=1, eos=2, no pad id, byte fallback,\n"
              "digits split, no normalisation. Writes one .model file atomically.");
  flags.option("input", "", "plain text file to train on", true)
      .option("vocab-size", "", "number of pieces, including 3 special and 256 byte pieces", true)
      .option("out", "", "where to write the tokenizer (FILE.model)", true)
      .option("model-type", "bpe", "bpe or unigram")
      .option("max-sentences", "0", "train on a random sample of this many lines (0: all)")
      .flag("verbose", "show SentencePiece's training log on stderr");
  declare_overwrite_flag(flags);
  if (!flags.parse(args)) return 0;
  check_outputs_free(flags, {flags.str("out")});

  int64_t vocab = flags.integer("vocab-size");
  if (vocab < 4 || vocab > 1'000'000) throw UsageError("--vocab-size must be in [4, 1000000]");
  std::string model_type = flags.str("model-type");
  if (model_type != "bpe" && model_type != "unigram") {
    throw UsageError("--model-type must be bpe or unigram, not '" + model_type + "'");
  }
  TokenizerTrainOptions options;
  options.model_type = model_type;
  options.max_sentences = flags.integer("max-sentences");
  if (options.max_sentences < 0) throw UsageError("--max-sentences must be >= 0");
  options.verbose = flags.on("verbose");

  const std::string out = flags.str("out");
  TokenizerTrainSummary s =
      train_tokenizer(flags.str("input"), static_cast<int>(vocab), out, options);
  std::printf(
      "trained %s tokenizer: vocab %d (3 special + 256 byte + %d learned pieces) from %lld "
      "lines in %.1f s -> %s\n",
      model_type.c_str(), s.vocab_size, s.vocab_size - 3 - 256, static_cast<long long>(s.lines),
      s.seconds, out.c_str());
  return 0;
}

}  // namespace rlaif::cli
