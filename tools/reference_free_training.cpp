#include "tools/reference_free_training.h"

#include "io/model_dir.h"
#include "kernels/device_communicator.h"
#include "runtime/communicator.h"
#include "tools/lora_flags.h"
#include "tools/preference_flags.h"
#include "tools/train_flags.h"

namespace rlaif::cli {

void declare_reference_free_flags(Flags& flags) {
  flags.option("model", "", "policy to start from (an SFT model, or a base model for ORPO)", true);
  declare_preference_flags(flags);
  declare_trainer_flags(flags, "100", "1e-6");
}

int run_reference_free(const Flags& flags, ReferenceFreeOptions options, const char* command,
                       const std::vector<std::string>& loss_flags) {
  std::vector<std::string> identity = trainer_identity_flags();
  for (const std::string& k : preference_identity_flags()) identity.push_back(k);
  identity.insert(identity.end(), loss_flags.begin(), loss_flags.end());
  std::vector<std::string> recorded = identity;
  recorded.insert(recorded.end(), {"model", "steps"});
  TrainerOptions trainer = trainer_options(flags, recorded, identity);
  trainer.label = command;
  // Under `mpirun -np R`: data-parallel over R ranks; rank 0 does the IO.
  Communicator& comm = world_communicator();
  trainer.comm = &comm;
  const bool lead = comm.rank() == 0;

  const std::string model_dir = flags.str("model");
  const Device device = training_device(flags);
  trainer.device_comm = &communicator_for(device);
  Transformer policy = load_model(model_dir, device, model_dtype(flags));
  prepare_for_training(policy, flags, static_cast<uint64_t>(flags.integer("seed")), command, lead);
  const Tokenizer tokenizer = Tokenizer::load_dir(model_dir);
  trainer.tokenizer_source = model_dir;
  trainer.base_model = model_dir;
  PreferenceSplits data =
      load_preference_splits(flags, model_dir, tokenizer, policy.config(), "", command, lead);
  options.batch = flags.integer("batch");
  options.grad_accum = trainer.grad_accum;
  options.seed = static_cast<uint64_t>(flags.integer("seed"));
  options.rank = comm.rank();
  options.ranks = comm.size();
  check_rank_shard(options.batch, options.rank, options.ranks, command);

  ReferenceFreeTask task(policy, std::move(data.train), std::move(data.val), options);
  TrainResult result = rlaif::train(policy, task, trainer);
  return finish_training(result, trainer, lead);
}

}  // namespace rlaif::cli
