// Rollouts of PPO, RLOO and GRPO: sampling responses from the policy, scoring them, and turning
// the scores into per-token rewards and advantages.
//
// One rollout (step s) takes `batch_prompts` prompts and samples K responses to each with the KV
// cache (model/generate.h). Sequence r = p·K + k is [BOS] template(prompt_p) response; its
// response token t (0 ≤ t < L) sits at batch position P−1+t of a SequenceBatch (the position that
// predicts it, P = prompt length), where every per-token quantity below lives:
//   log π_old(y_t)   the sampling policy's log-probability (logits / temperature, as sampled)
//   log π_ref(y_t)   the reference's (the frozen initial policy), also at the temperature
//   V_t              the value model's head at that position (gae only): the value of the state
//                    before y_t is chosen
//   kl_t             the chosen estimator of KL(π ‖ π_ref) (algorithms/kl_penalty.h)
// Randomness: the prompts of step s are positions [s·P, (s+1)·P) of an endless sequence of
// epochs, each a Philox Fisher-Yates shuffle of the prompts (seed, epoch); sequence r of step s
// samples from stream s·R + r (R sequences per step) of the sampling seed. A rollout is thus a
// pure function of (seed, step, current weights): a resumed run samples what the uninterrupted
// run sampled.
//
// Rewards and advantages, by --advantage:
//   gae   r_t = −β·kl_t, plus the score at t = L−1 (Ziegler et al., 2019); optionally whitened
//         without shifting the mean (--whiten-rewards); A by GAE with the values (γ, λ), returns
//         R_t = A_t + V_t; then A whitened over the batch (Huang et al., 2024, detail 9).
//   rloo  sequence reward R_i = score_i − β·Σ_t kl_t; A_i its leave-one-out advantage over the K
//         samples of its prompt, given to every token of the response (Ahmadian et al., 2024).
//   grpo  A_i = the group-normalised score, given to every token; the KL is not in the reward
//         but in the loss, as β·k3 (Shao et al., 2024; algorithms/ppo_losses.h).
// Missing-EOS penalty (Huang et al., 2024, detail 23): a response that did not end with EOS
// (cut off at --max-new-tokens) has P subtracted from its score before any of this.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "algorithms/kl_penalty.h"
#include "algorithms/ppo_losses.h"
#include "algorithms/reward_function.h"
#include "algorithms/sequences.h"
#include "io/chat_template.h"
#include "io/tokenizer.h"
#include "model/transformer.h"

namespace rlaif {

class Communicator;  // runtime/communicator.h

enum class AdvantageKind { gae, rloo, grpo };
AdvantageKind parse_advantage_kind(const std::string& name);  // Error naming a bad value
const char* advantage_kind_name(AdvantageKind kind);

struct PpoOptions {
  AdvantageKind advantage = AdvantageKind::gae;
  int64_t batch_prompts = 8;       // prompts per rollout
  int64_t samples_per_prompt = 1;  // K (≥ 2 for rloo and grpo)
  double kl_coef = 0.05;           // β (the initial value under the adaptive controller)
  KlEstimator kl_estimator = KlEstimator::k1;  // in the reward (gae, rloo); grpo's loss uses k3
  double adaptive_kl_target = 0.0;             // > 0: adapt β towards this KL per sequence
  double adaptive_kl_horizon = 10000.0;
  double cliprange = 0.2;        // ε (ε_low) of the policy ratio
  double cliprange_high = -1.0;  // ε_high (DAPO's clip-higher); < 0: the same as cliprange
  bool scale_rewards = true;     // grpo: divide by the group's std (false: Dr. GRPO)
  LossAggregation loss_aggregation = LossAggregation::dapo;  // algorithms/ppo_losses.h
  double cliprange_value = 0.2;                              // ε_v of the value prediction
  double vf_coef = 0.1;                                      // weight of the value loss (gae)
  double gamma = 1.0;
  double lambda = 0.95;
  int64_t ppo_epochs = 4;       // passes over each rollout
  int64_t mini_batches = 1;     // optimizer steps per pass
  bool whiten_rewards = false;  // gae only
  int64_t max_new_tokens = 64;
  double temperature = 1.0;          // > 0: sampling and every log-probability use logits / T
  double missing_eos_penalty = 0.0;  // subtracted from the score of a response without EOS
  int64_t max_prompt_length = 256;   // prompts are cut from the left to this many tokens
  ChatTemplate chat;
  uint64_t seed = 0;
  int64_t forward_batch = 16;  // sequences per no-grad forward pass (generation, scoring)

  // The value model's base directory, recorded in value_model/adapter_config.json when the value
  // model trains LoRA adapters (the policy's is TrainerOptions::base_model).
  std::string value_base_model;

  // Error naming the flag for values out of range.
  void validate() const;
  int64_t sequences_per_step() const { return batch_prompts * samples_per_prompt; }
};

struct Sample {
  int64_t prompt_index = 0;  // into the prompt list
  TokenizedExample tokens;   // prompt ids and response ids (EOS included when it stopped there)
  std::string completion;    // the decoded response
  bool eos = false;          // the response ended with EOS
  double score = 0.0;        // the reward function's score, missing-EOS penalty applied
  // Per response token, each of tokens.completion.size() entries:
  std::vector<float> logprobs, ref_logprobs, values, kl, rewards, advantages, returns;
  double entropy = 0.0;  // Σ_t of the policy's entropy at each response position
};

struct Rollout {
  int64_t step = 0;
  std::vector<Sample> samples;  // prompt-major: sample k of the p-th prompt at p·K + k
  double seconds = 0.0;         // generation, scoring and the no-grad forward passes
  // Its parts on this rank: sampling the responses, the reward function, and the no-grad
  // forward passes (log π_old, log π_ref, entropy, values); the rest is gathering over ranks.
  double generate_seconds = 0.0, score_seconds = 0.0, evaluate_seconds = 0.0;
  int64_t response_tokens() const;
};

// What a rollout reads. `value` is null unless the advantage is gae.
struct RolloutModels {
  const Transformer* policy = nullptr;
  const Transformer* reference = nullptr;
  const Transformer* value = nullptr;
  const Tokenizer* tokenizer = nullptr;
  RewardFunction* reward = nullptr;
};

// The prompt indices of step `step` (batch_prompts of them, from n_prompts), as described above.
std::vector<int64_t> rollout_prompt_indices(int64_t step, int64_t batch_prompts, int64_t n_prompts,
                                            uint64_t seed);

// Per-token log π(target) [B, T] of the batch's targets under `model` with logits / temperature
// (0 at untrained positions). With `entropy` (computed without gradient), also each position's
// entropy of that distribution, [B, T] on the host.
Variable response_logprobs(const Transformer& model, const SequenceBatch& batch, double temperature,
                           Tensor* entropy = nullptr);
// The value head at every position, [B, T].
Variable position_values(const Transformer& value_model, const SequenceBatch& batch);

// The sequences of `samples` as one right-padded batch (tokens.prompt + tokens.completion).
SequenceBatch sample_batch(const std::vector<const Sample*>& samples, Device device,
                           int32_t pad_id);
// A per-token field of `samples` placed at its batch positions, [B, T] f32 on `device`, zero
// elsewhere; T = width.
Tensor per_token_tensor(const std::vector<const Sample*>& samples,
                        std::vector<float> Sample::*field, int64_t width, Device device);
// values[b] at every response position of sample b, [B, T] f32 on `device`, zero elsewhere.
Tensor per_token_constant(const std::vector<const Sample*>& samples,
                          const std::vector<double>& values, int64_t width, Device device);

// Samples, scores and evaluates one rollout (everything but rewards and advantages). Collective
// when `comm` has several ranks: each generates, scores and evaluates its share of the sequences,
// and every rank returns the whole rollout (algorithms/ppo_data_parallel.h).
Rollout collect_rollout(const RolloutModels& models, const std::vector<std::string>& prompts,
                        int64_t step, const PpoOptions& options, Communicator* comm = nullptr);

// Fills kl, rewards, advantages and returns of every sample, with KL coefficient `kl_coef`.
void assign_advantages(Rollout& rollout, const PpoOptions& options, double kl_coef);

// Rollout statistics for the metrics log: score, kl (mean Σ_t k1 per sequence), entropy (mean
// per token), response_length, eos_fraction, non_score_reward (mean −β·Σ_t kl_t, gae and
// rloo), advantage_mean/std; explained_variance of the values (gae).
std::vector<std::pair<std::string, double>> rollout_metrics(const Rollout& rollout,
                                                            const PpoOptions& options,
                                                            double kl_coef);

}  // namespace rlaif
