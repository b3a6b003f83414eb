// `rlaif pretrain`: next-token training of a model on text or an llm.c token shard.
#include <cstdio>
#include <optional>
#include <string>

#include "algorithms/pretrain.h"
#include "io/model_dir.h"
#include "io/token_data.h"
#include "kernels/device_communicator.h"
#include "runtime/communicator.h"
#include "tools/commands.h"
#include "tools/lora_flags.h"
#include "tools/train_flags.h"

namespace rlaif::cli {

int pretrain_main(const std::vector<std::string>& args) {
  Flags flags("pretrain",
              "Train a model from scratch or from a checkpoint on text (tokenized once with the\n"
              "model's tokenizer and cached beside it) or an llm.c token shard. The trained model\n"
              "is written to --out as a model directory.");
  flags.option("model", "", "model directory to start from (see `rlaif init`)", true)
      .option("data", "", "training text file or llm.c token shard", true)
      .option("val-data", "", "held-out text or shard (default: the end of --data)")
      .option("val-fraction", "0.05", "fraction of --data held out when --val-data is not given")
      .option("batch", "8", "sequences per micro-batch (B)")
      .option("seq", "256", "tokens per sequence (T)")
      .option("data-order", "shuffled", "sequential (llm.c's consecutive windows) or shuffled")
      .option("eval-batches", "20", "held-out batches per evaluation");
  declare_trainer_flags(flags, "1000", "6e-4");
  if (!flags.parse(args)) return 0;

  const std::vector<std::string> identity = [] {
    std::vector<std::string> keys = trainer_identity_flags();
    for (const char* k : {"data", "val-data", "val-fraction", "batch", "seq", "data-order"}) {
      keys.emplace_back(k);
    }
    return keys;
  }();
  std::vector<std::string> recorded = identity;
  recorded.insert(recorded.end(), {"model", "steps"});
  TrainerOptions options = trainer_options(flags, recorded, identity);
  options.label = "pretrain";
  // Under `mpirun -np R`: data-parallel over R ranks (algorithms/trainer.h); rank 0 does the IO.
  Communicator& comm = world_communicator();
  options.comm = &comm;
  const bool lead = comm.rank() == 0;

  const std::string model_dir = flags.str("model");
  const Device device = training_device(flags);
  options.device_comm = &communicator_for(device);
  Transformer model = load_model(model_dir, device, model_dtype(flags));
  prepare_for_training(model, flags, static_cast<uint64_t>(flags.integer("seed")), "pretrain",
                       lead);
  options.base_model = model_dir;
  std::optional<Tokenizer> tok;
  if (Tokenizer::exists_in_dir(model_dir)) {
    tok = Tokenizer::load_dir(model_dir);
    options.tokenizer_source = model_dir;
  }
  auto tokens_of = [&](const std::string& path) {
    if (is_token_shard(path)) return read_token_shard(path);
    RLAIF_CHECK(
        tok.has_value(), path, " is text but ", model_dir,
        " has no tokenizer to tokenize it (looked for tokenizer.json, vocab.json + merges.txt, "
        "tokenizer.model)");
    return load_tokens_cached(path, *tok);
  };
  // Rank 0 tokenizes first and writes the token caches; the others then read them rather than
  // racing to write the same files.
  std::vector<int32_t> train, val;
  for (int turn = 0; turn < 2; ++turn) {
    if ((turn == 0) == lead) {
      train = tokens_of(flags.str("data"));
      if (!flags.str("val-data").empty()) val = tokens_of(flags.str("val-data"));
    }
    if (turn == 0) comm.barrier();
  }
  if (flags.str("val-data").empty()) {
    double fraction = flags.number("val-fraction");
    if (fraction < 0 || fraction >= 1) throw UsageError("--val-fraction must be in [0, 1)");
    size_t held = static_cast<size_t>(static_cast<double>(train.size()) * fraction);
    val.assign(train.end() - static_cast<long>(held), train.end());
    train.resize(train.size() - held);
  }
  PretrainDataOptions data;
  data.batch = flags.integer("batch");
  data.seq = flags.integer("seq");
  data.order = flags.str("data-order");
  data.seed = static_cast<uint64_t>(flags.integer("seed"));
  data.eval_batches = flags.integer("eval-batches");
  data.grad_accum = options.grad_accum;
  data.rank = comm.rank();
  data.ranks = comm.size();
  if (lead && static_cast<int64_t>(val.size()) <= data.batch * data.seq) {
    std::fprintf(stderr,
                 "pretrain: warning: %zu held-out tokens are fewer than one %lldx%lld batch; no "
                 "validation loss will be reported\n",
                 val.size(), static_cast<long long>(data.batch), static_cast<long long>(data.seq));
  }
  if (lead) {
    const std::string ranks =
        comm.size() > 1 ? ", " + std::to_string(comm.size()) + " data-parallel ranks" : "";
    std::fprintf(stderr, "pretrain: %zu training tokens, %zu held out, %lld parameters%s\n",
                 train.size(), val.size(), static_cast<long long>(model.config().parameter_count()),
                 ranks.c_str());
  }
  PretrainTask task(model, std::move(train), std::move(val), data);
  TrainResult result = rlaif::train(model, task, options);
  return finish_training(result, options, lead);
}

}  // namespace rlaif::cli
