// `rlaif rm`: train a reward model on preference pairs (Bradley–Terry, algorithms/reward.h).
#include <cstdio>

#include "algorithms/reward.h"
#include "io/model_dir.h"
#include "kernels/device_communicator.h"
#include "runtime/communicator.h"
#include "tools/commands.h"
#include "tools/lora_flags.h"
#include "tools/preference_flags.h"
#include "tools/train_flags.h"

namespace rlaif::cli {

int rm_main(const std::vector<std::string>& args) {
  Flags flags("rm",
              "Train a reward model on preference pairs: a scalar head (score.weight, added when\n"
              "--model has none) reads the last token of prompt + answer, and the Bradley-Terry\n"
              "loss -log sigmoid(r_chosen - r_rejected - margin) + C*(r_chosen + r_rejected)^2\n"
              "teaches it to score chosen answers above rejected ones. Logs loss, accuracy and\n"
              "margin on the training batches and the held-out pairs; writes the reward model\n"
              "to --out.");
  flags.option("model", "", "model directory to start from (an LM or a reward model)", true)
      .option("margin-key", "", "record field holding each pair's margin m (default: none, m = 0)")
      .option("center-rewards", "0", "C: weight of the (r_chosen + r_rejected)^2 centring term");
  declare_preference_flags(flags);
  declare_trainer_flags(flags, "100", "1e-5");
  if (!flags.parse(args)) return 0;

  std::vector<std::string> identity = trainer_identity_flags();
  for (const std::string& k : preference_identity_flags()) identity.push_back(k);
  identity.insert(identity.end(), {"margin-key", "center-rewards"});
  std::vector<std::string> recorded = identity;
  recorded.insert(recorded.end(), {"model", "steps"});
  TrainerOptions options = trainer_options(flags, recorded, identity);
  options.label = "rm";
  // Under `mpirun -np R`: data-parallel over R ranks (algorithms/reward.h); rank 0 does the IO.
  Communicator& comm = world_communicator();
  options.comm = &comm;
  const bool lead = comm.rank() == 0;

  const std::string model_dir = flags.str("model");
  const Device device = training_device(flags);
  Transformer model = load_model(model_dir, device, model_dtype(flags));
  options.device_comm = &communicator_for(device);  // gradients and optimizer shards
  const auto seed = static_cast<uint64_t>(flags.integer("seed"));
  if (ensure_scalar_head(model, seed) && lead) {
    std::fprintf(stderr, "rm: %s has no scalar head; added score.weight (seed %llu)\n",
                 model_dir.c_str(), static_cast<unsigned long long>(seed));
  }
  prepare_for_training(model, flags, seed, "rm", lead);
  const Tokenizer tokenizer = Tokenizer::load_dir(model_dir);
  options.tokenizer_source = model_dir;
  options.base_model = model_dir;
  PreferenceSplits data = load_preference_splits(flags, model_dir, tokenizer, model.config(),
                                                 flags.str("margin-key"), "rm", lead);

  RewardOptions ro;
  ro.batch = flags.integer("batch");
  ro.grad_accum = options.grad_accum;
  ro.seed = seed;
  ro.use_margin = !flags.str("margin-key").empty();
  ro.center_coef = flags.number("center-rewards");
  if (ro.center_coef < 0) throw UsageError("--center-rewards must be ≥ 0");
  ro.rank = comm.rank();
  ro.ranks = comm.size();
  RewardTask task(model, std::move(data.train), std::move(data.val), ro);
  TrainResult result = rlaif::train(model, task, options);
  return finish_training(result, options, lead);
}

}  // namespace rlaif::cli
