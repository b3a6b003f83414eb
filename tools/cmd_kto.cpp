// `rlaif kto`: align a policy to completions labelled desirable or undesirable with KTO
// (algorithms/kto.h).
#include <cstdio>
#include <memory>

#include "algorithms/kto.h"
#include "io/chat_template.h"
#include "io/model_dir.h"
#include "kernels/device_communicator.h"
#include "runtime/communicator.h"
#include "tools/chat_flags.h"
#include "tools/commands.h"
#include "tools/lora_flags.h"
#include "tools/preference_flags.h"
#include "tools/reference_model.h"
#include "tools/train_flags.h"

namespace rlaif::cli {
namespace {

// The labelled completions of `path`: unpaired records as they are, or preference pairs unpaired
// (chosen desirable, rejected undesirable). The last `fraction` of the records (of the pairs, for
// pair files, so that both answers of a held-out pair are held out) go to `held_out`.
std::vector<LabeledCompletion> load_kto_records(const std::string& path, double fraction,
                                                std::vector<LabeledCompletion>* held_out) {
  auto split = [&](auto records) {
    const auto held = static_cast<size_t>(static_cast<double>(records.size()) * fraction);
    decltype(records) tail(records.end() - static_cast<long>(held), records.end());
    records.resize(records.size() - held);
    return std::pair{std::move(records), std::move(tail)};
  };
  if (is_preference_file(path)) {
    auto [train, val] = split(load_preferences(path));
    if (held_out) *held_out = unpair_preferences(val);
    return unpair_preferences(train);
  }
  auto [train, val] = split(load_labeled_completions(path));
  if (held_out) *held_out = std::move(val);
  return train;
}

}  // namespace

int kto_main(const std::vector<std::string>& args) {
  Flags flags("kto",
              "Kahneman-Tversky Optimization (Ethayarajh et al., 2024): train --model on single\n"
              "completions labelled desirable or undesirable, relative to a frozen reference\n"
              "(--ref, default the starting --model). With r = log pi(y|x) - log ref(y|x) and\n"
              "z0 the batch's KL estimate (from each prompt paired with another example's\n"
              "completion, clamped at 0), a desirable example costs\n"
              "desirable-weight (1 - sigmoid(beta (r - z0))) and an undesirable one\n"
              "undesirable-weight (1 - sigmoid(beta (z0 - r))) (equations: algorithms/kto.h).\n"
              "Reads {prompt, completion, label} records, or preference pairs, each split into\n"
              "a desirable and an undesirable example. Logs TRL's metrics (rewards/chosen,\n"
              "rewards/rejected, rewards/margins, logps/chosen, logps/rejected, kl).");
  flags.option("model", "", "policy to start from (an SFT model)", true)
      .option("ref", "", "reference model directory (default: --model)")
      .option("beta", "0.1", "beta: strength of the tie to the reference")
      .option("desirable-weight", "1",
              "lambda_D: weight of the desirable examples' losses (raise it when they are rarer)")
      .option("undesirable-weight", "1", "lambda_U: weight of the undesirable examples' losses")
      .flag("precompute-ref", "compute the reference log-probs once and cache them")
      .option("data", "",
              "labelled completions: JSONL or JSON ({prompt, completion, label: true|false}, TRL "
              "conversational too), or preference pairs (the files `rlaif dpo` reads)",
              true)
      .option("val-data", "", "held-out examples (default: the last --val-fraction of --data)")
      .option("val-fraction", "0.05",
              "fraction of --data held out when --val-data is not given (of the pairs, for a "
              "pair file)")
      .option("batch", "8", "examples per micro-batch (each is scored on two sequences)")
      .option("max-length", "512",
              "tokens per sequence at most (capped at the model's context when not given)")
      .option("max-prompt-length", "256", "prompt tokens at most (cut from the left)");
  declare_chat_template_flag(flags);
  declare_trainer_flags(flags, "100", "1e-6");
  if (!flags.parse(args)) return 0;

  std::vector<std::string> identity = trainer_identity_flags();
  for (const std::string& k : preference_identity_flags()) identity.push_back(k);
  identity.insert(identity.end(), {"ref", "beta", "desirable-weight", "undesirable-weight"});
  std::vector<std::string> recorded = identity;
  recorded.insert(recorded.end(), {"model", "steps", "precompute-ref"});
  TrainerOptions options = trainer_options(flags, recorded, identity);
  options.label = "kto";
  // Under `mpirun -np R`: data-parallel over R ranks (algorithms/kto.h); rank 0 does the IO.
  Communicator& comm = world_communicator();
  options.comm = &comm;
  const bool lead = comm.rank() == 0;

  KtoOptions kto;
  kto.beta = flags.number("beta");
  kto.desirable_weight = flags.number("desirable-weight");
  kto.undesirable_weight = flags.number("undesirable-weight");
  if (!(kto.beta > 0)) throw UsageError("--beta must be positive");
  if (!(kto.desirable_weight >= 0)) throw UsageError("--desirable-weight must be ≥ 0");
  if (!(kto.undesirable_weight >= 0)) throw UsageError("--undesirable-weight must be ≥ 0");
  if (kto.desirable_weight == 0 && kto.undesirable_weight == 0)
    throw UsageError("--desirable-weight and --undesirable-weight are both 0: nothing to learn");
  kto.batch = flags.integer("batch");
  if (kto.batch <= 0) throw UsageError("--batch must be positive");
  const double fraction = flags.number("val-fraction");
  if (flags.str("val-data").empty() && (fraction < 0 || fraction >= 1))
    throw UsageError("--val-fraction must be in [0, 1)");

  const std::string model_dir = flags.str("model");
  const Device device = training_device(flags);
  options.device_comm = &communicator_for(device);  // gradients and optimizer shards
  Transformer policy = load_model(model_dir, device, model_dtype(flags));
  const bool adapters = prepare_for_training(
      policy, flags, static_cast<uint64_t>(flags.integer("seed")), "kto", lead);
  const Tokenizer tokenizer = Tokenizer::load_dir(model_dir);
  options.tokenizer_source = model_dir;
  options.base_model = model_dir;

  std::vector<LabeledCompletion> train, val;
  if (flags.str("val-data").empty()) {
    train = load_kto_records(flags.str("data"), fraction, &val);
  } else {
    train = load_kto_records(flags.str("data"), 0.0, nullptr);
    val = load_kto_records(flags.str("val-data"), 0.0, nullptr);
  }
  RLAIF_CHECK(!train.empty(), flags.str("data"), ": no training examples left after holding out ",
              val.size(), "; lower --val-fraction");
  const ChatTemplate chat = chat_template_from_flags(flags, model_dir, lead ? "kto" : nullptr);
  const TruncationOptions truncation = truncation_from_flags(flags, policy.config());
  std::vector<KtoExample> train_examples =
      tokenize_kto_examples(tokenizer, chat, train, truncation);
  std::vector<KtoExample> val_examples = tokenize_kto_examples(tokenizer, chat, val, truncation);
  if (lead) {
    size_t desirable = 0;
    for (const LabeledCompletion& e : train) desirable += e.desirable;
    std::fprintf(stderr,
                 "kto: %zu training examples (%zu desirable, %zu undesirable), %zu held out, max "
                 "length %lld\n",
                 train.size(), desirable, train.size() - desirable, val.size(),
                 static_cast<long long>(truncation.max_length));
    print_training_sequence(tokenizer, train_examples.front().example, "kto");
  }

  kto.grad_accum = options.grad_accum;
  kto.seed = static_cast<uint64_t>(flags.integer("seed"));
  kto.rank = comm.rank();
  kto.ranks = comm.size();
  kto.comm = &comm;
  check_rank_shard(kto.batch, kto.rank, kto.ranks, "kto");  // before any reference pass

  std::unique_ptr<Transformer> live;
  DpoReference reference = reference_from_flags(
      flags, policy, adapters, model_dir, options.out_dir, kto_as_pairs(train_examples),
      kto_as_pairs(val_examples), kto.batch, comm, lead, "kto", live);

  KtoTask task(policy, std::move(reference), std::move(train_examples), std::move(val_examples),
               kto);
  TrainResult result = rlaif::train(policy, task, options);
  return finish_training(result, options, lead);
}

}  // namespace rlaif::cli
