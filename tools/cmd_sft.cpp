// `rlaif sft`: supervised fine-tuning on prompt/completion demonstrations (algorithms/sft.h).
#include <cstdio>

#include "algorithms/sft.h"
#include "io/model_dir.h"
#include "kernels/device_communicator.h"
#include "runtime/communicator.h"
#include "tools/chat_flags.h"
#include "tools/commands.h"
#include "tools/lora_flags.h"
#include "tools/train_flags.h"

namespace rlaif::cli {

int sft_main(const std::vector<std::string>& args) {
  Flags flags(
      "sft",
      "Fine-tune a model on demonstrations: JSONL or JSON-array records of\n"
      "{prompt, completion}, {messages: [...]} or Alpaca's {instruction, input, output}.\n"
      "Each conversation is rendered with the chat template (by default the model's own;\n"
      "without one BOS + \"Human: {prompt}\\n\\nAssistant: \" + reply + EOS); the loss is\n"
      "the mean negative log-likelihood of the assistant's replies only, every reply of a\n"
      "multi-turn conversation unless --last-turn-only. Truncation: the prompt (everything\n"
      "before the last reply) is cut from the left to --max-prompt-length (BOS kept), then\n"
      "the last reply from the right to fit --max-length (losing its end). The trained model\n"
      "is written to --out as a model directory.");
  flags.option("model", "", "model directory to start from", true)
      .option("data", "", "training demonstrations (.jsonl or .json)", true)
      .option("val-data", "", "held-out demonstrations (default: the end of --data)")
      .option("val-fraction", "0.05", "fraction of --data held out when --val-data is not given")
      .option("eval-examples", "512", "held-out examples per evaluation at most (the first ones)")
      .option("batch", "8", "examples per micro-batch (B)")
      .option("epochs", "3", "passes over the training examples; sets --steps when it is not given")
      .option("max-length", "512",
              "tokens per sequence at most (prompt + completion + EOS); "
              "capped at the model's context unless given")
      .option("max-prompt-length", "256", "prompt tokens at most (BOS included)")
      .flag("packing",
            "pack each micro-batch's examples into rows of --max-length tokens "
            "(attention stays within each example; the loss is unchanged)")
      .flag("last-turn-only", "train on the last assistant reply of each conversation only");
  declare_chat_template_flag(flags);
  declare_trainer_flags(flags, "0", "2e-5");
  flags.option("steps", "0", "optimizer steps (0: ⌈epochs·examples / (batch·grad-accum)⌉)");
  if (!flags.parse(args)) return 0;

  const std::string model_dir = flags.str("model");
  const Device device = training_device(flags);
  Transformer model = load_model(model_dir, device, model_dtype(flags));
  prepare_for_training(model, flags, static_cast<uint64_t>(flags.integer("seed")), "sft",
                       world_communicator().rank() == 0);
  Tokenizer tok = Tokenizer::load_dir(model_dir);

  const int64_t context = model.config().max_position_embeddings;
  TruncationOptions truncation;
  truncation.max_length = flags.integer("max-length");
  truncation.max_prompt_length = flags.integer("max-prompt-length");
  if (!flags.given("max-length")) truncation.max_length = std::min(truncation.max_length, context);
  if (truncation.max_length < 2 || truncation.max_length > context) {
    throw UsageError("--max-length must be in [2, the model's context of " +
                     std::to_string(context) + "], got " + std::to_string(truncation.max_length));
  }
  if (truncation.max_prompt_length < 1) throw UsageError("--max-prompt-length must be positive");

  std::vector<SftExample> train_examples = load_sft_examples(flags.str("data")), val_examples;
  if (!flags.str("val-data").empty()) {
    val_examples = load_sft_examples(flags.str("val-data"));
  } else {
    const double fraction = flags.number("val-fraction");
    if (fraction < 0 || fraction >= 1) throw UsageError("--val-fraction must be in [0, 1)");
    const auto held = static_cast<size_t>(static_cast<double>(train_examples.size()) * fraction);
    val_examples.assign(train_examples.end() - static_cast<long>(held), train_examples.end());
    train_examples.resize(train_examples.size() - held);
  }
  if (train_examples.empty()) throw UsageError("--val-fraction leaves no training examples");
  const int64_t eval_examples = flags.integer("eval-examples");
  if (eval_examples < 0) throw UsageError("--eval-examples must be ≥ 0");
  if (static_cast<int64_t>(val_examples.size()) > eval_examples) {
    val_examples.resize(static_cast<size_t>(eval_examples));
  }

  const bool lead = world_communicator().rank() == 0;
  const ChatTemplate chat = chat_template_from_flags(flags, model_dir, lead ? "sft" : nullptr);
  int64_t split = 0;
  std::vector<TokenizedExample> train = tokenize_sft_examples(tok, chat, train_examples, truncation,
                                                              flags.on("last-turn-only"), &split);
  std::vector<TokenizedExample> val =
      tokenize_sft_examples(tok, chat, val_examples, truncation, flags.on("last-turn-only"));
  if (lead) {
    if (split > 0) {
      std::fprintf(stderr,
                   "sft: the chat template renders earlier replies differently once later turns "
                   "follow, so %lld conversations are trained as one sequence per reply\n",
                   static_cast<long long>(split));
    }
    int64_t cut = 0;
    for (const auto& e : train) cut += e.completion_cut;
    if (cut > 0) {
      std::fprintf(stderr,
                   "sft: warning: %lld of %zu replies were cut to fit --max-length %lld (their "
                   "end is not trained)\n",
                   static_cast<long long>(cut), train.size(),
                   static_cast<long long>(truncation.max_length));
    }
    print_training_sequence(tok, train.front(), "sft");
  }

  SftOptions data;
  data.batch = flags.integer("batch");
  if (data.batch <= 0) throw UsageError("--batch must be positive");
  data.grad_accum = flags.integer("grad-accum");
  if (data.grad_accum <= 0) throw UsageError("--grad-accum must be positive");
  data.seed = static_cast<uint64_t>(flags.integer("seed"));
  data.packing = flags.on("packing");
  data.row_length = truncation.max_length;

  // --epochs becomes a step count before the trainer options are read, so the recorded settings
  // hold the steps actually run.
  if (flags.integer("steps") == 0) {
    const double epochs = flags.number("epochs");
    if (!(epochs > 0)) throw UsageError("--epochs must be positive");
    const int64_t steps = sft_steps_for_epochs(epochs, static_cast<int64_t>(train.size()),
                                               data.batch, data.grad_accum);
    std::vector<std::string> with_steps = args;
    with_steps.push_back("--steps=" + std::to_string(steps));
    flags.parse(with_steps);
  }
  const std::vector<std::string> identity = [] {
    std::vector<std::string> keys = trainer_identity_flags();
    for (const char* k :
         {"data", "val-data", "val-fraction", "eval-examples", "batch", "max-length",
          "max-prompt-length", "packing", "chat-template", "last-turn-only"}) {
      keys.emplace_back(k);
    }
    return keys;
  }();
  std::vector<std::string> recorded = identity;
  recorded.insert(recorded.end(), {"model", "steps", "epochs"});
  TrainerOptions options = trainer_options(flags, recorded, identity);
  options.label = "sft";
  // Under `mpirun -np R`: data-parallel over R ranks (algorithms/trainer.h); rank 0 does the IO.
  Communicator& comm = world_communicator();
  options.comm = &comm;
  options.device_comm = &communicator_for(device);
  data.rank = comm.rank();
  data.ranks = comm.size();
  options.tokenizer_source = model_dir;
  options.base_model = model_dir;

  if (lead)
    std::fprintf(
        stderr,
        "sft: %zu training examples, %zu held out, %lld steps of %lldx%lld, %lld parameters%s\n",
        train.size(), val.size(), static_cast<long long>(options.steps),
        static_cast<long long>(data.batch), static_cast<long long>(data.grad_accum),
        static_cast<long long>(model.config().parameter_count()), data.packing ? ", packed" : "");
  SftTask task(model, std::move(train), std::move(val), data);
  TrainResult result = rlaif::train(model, task, options);
  return finish_training(result, options, lead);
}

}  // namespace rlaif::cli
