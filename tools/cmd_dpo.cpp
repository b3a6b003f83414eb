// `rlaif dpo`: align a policy to preference pairs with DPO or a variant (algorithms/dpo.h).
#include <memory>

#include "algorithms/dpo.h"
#include "io/model_dir.h"
#include "kernels/device_communicator.h"
#include "runtime/communicator.h"
#include "tools/commands.h"
#include "tools/dpo_loss_flags.h"
#include "tools/lora_flags.h"
#include "tools/preference_flags.h"
#include "tools/reference_model.h"
#include "tools/train_flags.h"

namespace rlaif::cli {

int dpo_main(const std::vector<std::string>& args) {
  Flags flags("dpo",
              "Direct Preference Optimisation: train --model so that, relative to a frozen\n"
              "reference (--ref, default the starting --model), it raises the log-probability of\n"
              "chosen answers over rejected ones. With h = (log pi(c) - log pi(r)) - (log ref(c)\n"
              "- log ref(r)) over the answers' summed log-probs: sigmoid -log sigmoid(beta h)\n"
              "(with --label-smoothing e: cDPO), robust, ipo (h - 1/(2 beta))^2 on per-token\n"
              "average log-probs, hinge max(0, 1 - beta h), sigmoid_norm (sigmoid on per-token\n"
              "averages), and with a, b the chosen and rejected log-ratios to the reference:\n"
              "sppo_hard, nca_pair, exo_pair, apo_zero, apo_down, bco_pair (equations:\n"
              "algorithms/preference_losses.h). --precompute-ref computes the\n"
              "reference's log-probs once, caches them in OUT/ref_logprobs.safetensors, and frees\n"
              "the reference. Logs TRL's metrics (rewards/chosen, rewards/margins, ...).");
  flags.option("model", "", "policy to start from (an SFT model)", true)
      .option("ref", "", "reference model directory (default: --model)")
      .flag("precompute-ref", "compute the reference log-probs once and cache them");
  declare_dpo_loss_flags(flags);
  declare_preference_flags(flags);
  declare_trainer_flags(flags, "100", "1e-6");
  if (!flags.parse(args)) return 0;

  std::vector<std::string> identity = trainer_identity_flags();
  for (const std::string& k : preference_identity_flags()) identity.push_back(k);
  for (const std::string& k : dpo_loss_identity_flags()) identity.push_back(k);
  identity.emplace_back("ref");
  std::vector<std::string> recorded = identity;
  recorded.insert(recorded.end(), {"model", "steps", "precompute-ref"});
  TrainerOptions options = trainer_options(flags, recorded, identity);
  options.label = "dpo";
  // Under `mpirun -np R`: data-parallel over R ranks (algorithms/dpo.h); rank 0 does the IO.
  Communicator& comm = world_communicator();
  options.comm = &comm;
  const bool lead = comm.rank() == 0;

  DpoOptions dpo = dpo_loss_options(flags);

  const std::string model_dir = flags.str("model");
  const Device device = training_device(flags);
  options.device_comm = &communicator_for(device);  // gradients and optimizer shards
  Transformer policy = load_model(model_dir, device, model_dtype(flags));
  const bool adapters = prepare_for_training(
      policy, flags, static_cast<uint64_t>(flags.integer("seed")), "dpo", lead);
  const Tokenizer tokenizer = Tokenizer::load_dir(model_dir);
  options.tokenizer_source = model_dir;
  options.base_model = model_dir;
  PreferenceSplits data =
      load_preference_splits(flags, model_dir, tokenizer, policy.config(), "", "dpo", lead);
  dpo.batch = flags.integer("batch");
  dpo.grad_accum = options.grad_accum;
  dpo.seed = static_cast<uint64_t>(flags.integer("seed"));
  dpo.rank = comm.rank();
  dpo.ranks = comm.size();
  check_rank_shard(dpo.batch, dpo.rank, dpo.ranks, "dpo");  // before any reference pass

  std::unique_ptr<Transformer> live;
  DpoReference reference =
      reference_from_flags(flags, policy, adapters, model_dir, options.out_dir, data.train,
                           data.val, dpo.batch, comm, lead, "dpo", live);

  DpoTask task(policy, std::move(reference), std::move(data.train), std::move(data.val), dpo);
  TrainResult result = rlaif::train(policy, task, options);
  return finish_training(result, options, lead);
}

}  // namespace rlaif::cli
