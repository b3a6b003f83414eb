// `rlaif ppo`: reinforcement learning from a reward model with PPO, RLOO or GRPO
// (algorithms/ppo.h).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "algorithms/critic_reward.h"
#include "algorithms/ppo.h"
#include "algorithms/ppo_data_parallel.h"
#include "algorithms/reward.h"
#include "algorithms/rule_rewards.h"
#include "algorithms/server_reward.h"
#include "io/datasets.h"
#include "io/judge.h"
#include "io/model_dir.h"
#include "kernels/device_communicator.h"
#include "runtime/communicator.h"
#include "tools/api_flags.h"
#include "tools/chat_flags.h"
#include "tools/commands.h"
#include "tools/critic_flags.h"
#include "tools/lora_flags.h"
#include "tools/reward_flags.h"
#include "tools/train_flags.h"

namespace rlaif::cli {
namespace {

// The flags that change what a run computes (a resume must repeat them).
// clang-format off
const char* const kPpoIdentity[] = {
    "model", "reward-model", "value-model", "prompts", "batch", "advantage", "samples-per-prompt",
    "kl-coef", "kl-estimator", "adaptive-kl", "adaptive-kl-horizon", "cliprange", "clip-low",
    "clip-high", "scale-rewards", "loss-aggregation",
    "cliprange-value", "vf-coef", "gamma", "lambda", "ppo-epochs", "mini-batches",
    "whiten-rewards", "max-new-tokens", "temperature", "missing-eos-penalty", "chat-template",
    "max-prompt-length", "rm-max-length", "critic-model", "critic-mode", "critic-reference",
    "critic-template", "critic-both-orders", "critic-unparsed-reward", "critic-max-tokens",
    "reward"};
// clang-format on

CriticRewardOptions critic_reward_options(const Flags& flags) {
  CriticRewardOptions r;
  try {
    r.mode = parse_critic_mode(flags.str("critic-mode"));
  } catch (const Error& e) {
    throw UsageError(std::string("--critic-mode: ") + e.what());
  }
  const bool pairwise = r.mode == CriticMode::pairwise;
  if (pairwise != flags.given("critic-reference"))
    throw UsageError("--critic-reference goes with (and only with) --critic-mode pairwise");
  if (!pairwise && flags.on("critic-both-orders"))
    throw UsageError("--critic-both-orders is for --critic-mode pairwise");
  if (pairwise) {
    for (SftExample& e : load_sft_examples(flags.str("critic-reference")))
      r.references.emplace(e.prompt, e.completion);
  }
  if (flags.given("critic-template")) {
    r.judge = JudgeTemplate::from_file(
        pairwise ? JudgeTemplate::Kind::pairwise : JudgeTemplate::Kind::rating,
        flags.str("critic-template"));
  }
  r.both_orders = flags.on("critic-both-orders");
  r.max_tokens = flags.integer("critic-max-tokens");
  if (r.max_tokens < 1) throw UsageError("--critic-max-tokens must be at least 1");
  if (flags.given("critic-unparsed-reward"))
    r.unparsed_reward = flags.number("critic-unparsed-reward");
  return r;
}

}  // namespace

int ppo_main(const std::vector<std::string>& args) {
  Flags flags(
      "ppo",
      "Fine-tune a policy with reinforcement learning against a reward model. Each step samples\n"
      "K responses to --batch prompts with the KV cache, scores them with the reward model,\n"
      "penalises the KL to the initial policy per token (-kl_coef * KL, score at the last\n"
      "token), computes advantages (gae: a value model and GAE; rloo: leave-one-out over the K\n"
      "samples; grpo: group mean/std normalisation, KL in the loss) and makes --ppo-epochs x\n"
      "--mini-batches clipped-PPO updates. Logs score, kl, entropy, clip fraction, approx KL,\n"
      "value loss, explained variance, response length and tokens/s to metrics.jsonl; writes\n"
      "the policy to --out (and the value model to --out/value_model). --steps counts\n"
      "rollouts; --grad-accum splits each mini-batch; --eval-every is unused.\n"
      "Rules can score the responses instead (--reward, repeatable; the rules' weighted scores\n"
      "add up, and add to a reward model's, a critic's or a reward server's): exact-match:COL,\n"
      "regex:PATTERN, number:COL, json and length:N, where COL is a column of the --prompts\n"
      "records, e.g. {\"prompt\": \"Sort the letters b a.\", \"answer\": \"a b\"}.\n"
      "A reward server (--reward-url) gets POST {\"items\": [{\"prompt\", \"completion\",\n"
      "\"columns\"}, ...]} and answers {\"scores\": [...]}; its answers are cached in\n"
      "--out/reward_requests.jsonl.\n"
      "Instead of a reward model, an LLM critic over the OpenAI-compatible API can score the\n"
      "responses (--critic-api, --critic-model): with --critic-mode rating it rates each from 1\n"
      "to 10 (the reward is the rating); with pairwise it compares each with the reference\n"
      "completion of its prompt from --critic-reference (reward 1 win, 0 loss, 0.5 tie). An\n"
      "unparsed answer scores --critic-unparsed-reward (default: the middle of the scale).\n"
      "The critic's answers are cached in --out/requests.jsonl.");
  flags.option("model", "", "policy model directory (also the frozen reference)", true)
      .option("reward-model", "",
              "reward model directory (score head; see `rlaif rm`); or use --critic-api, "
              "--reward-url or --reward")
      .option("value-model", "",
              "value model directory for gae (default: --reward-model, else --model; a plain "
              "LM gets a head)")
      .option("critic-mode", "rating", "rating (1-10) or pairwise (against --critic-reference)")
      .option("critic-reference", "",
              "pairwise: SFT file of reference completions, one for every prompt")
      .option("critic-template", "", "judge template file for the critic (see `rlaif label`)")
      .flag("critic-both-orders", "pairwise: ask in both orders (a disagreement is a tie)")
      .option("critic-unparsed-reward", "",
              "reward for an unparsed critic answer (default: 5.5 rating, 0.5 pairwise)")
      .option("critic-max-tokens", "16", "tokens the critic may answer with")
      .option("prompts", "", "prompts: JSONL or JSON ({\"prompt\": ...} per record)", true)
      .option("batch", "8", "prompts per step")
      .option("advantage", "gae", "gae (value model), rloo or grpo")
      .option("samples-per-prompt", "0", "K responses per prompt (0: 1 for gae, 4 for rloo/grpo)")
      .option("kl-coef", "0.05",
              "beta: weight of the KL penalty (the initial value with --adaptive-kl)")
      .option("kl-estimator", "k1",
              "per-token KL estimate in the reward: k1 or k3 (grpo's loss uses k3)")
      .option("adaptive-kl", "0",
              "target KL per response for the adaptive controller (0 = fixed beta)")
      .option("adaptive-kl-horizon", "10000", "horizon of the adaptive KL controller")
      .option("cliprange", "0.2",
              "epsilon: clip range of the policy ratio (its lower side with --clip-high)")
      .option("clip-low", "0",
              "epsilon_low: the ratio's lower clip 1 - epsilon_low (0: --cliprange)")
      .option("clip-high", "0",
              "epsilon_high: the ratio's upper clip 1 + epsilon_high (DAPO's clip-higher, e.g. "
              "0.28; 0: --cliprange)")
      .option("scale-rewards", "on",
              "grpo: divide each group's advantages by its std (on), or only centre them (off: "
              "Dr. GRPO)")
      .option("loss-aggregation", "dapo",
              "how token terms become the loss: dapo (token mean over the mini-batch), grpo "
              "(each response's mean, then their mean) or dr_grpo (sum / (responses x "
              "--max-new-tokens))")
      .option("cliprange-value", "0.2", "epsilon_v: clip range of the value prediction")
      .option("vf-coef", "0.1", "weight of the value loss (gae)")
      .option("gamma", "1.0", "discount")
      .option("lambda", "0.95", "GAE lambda")
      .option("ppo-epochs", "4", "passes over each rollout")
      .option("mini-batches", "1", "optimizer updates per pass (must divide batch x K)")
      .flag("whiten-rewards", "whiten the per-token rewards before GAE (scale only)")
      .option("max-new-tokens", "64", "response tokens at most")
      .option("temperature", "1.0", "sampling temperature (> 0; log-probabilities use it too)")
      .option("missing-eos-penalty", "0", "subtracted from the score of a response without EOS")
      .option("max-prompt-length", "256", "prompt tokens at most (cut from the left)")
      .option("rm-max-length", "512",
              "tokens the reward model reads at most (capped at its context)")
      .option("forward-batch", "16",
              "sequences per no-grad forward pass (rollouts, continuously batched; scoring)");
  declare_reward_flags(flags);
  declare_critic_client_flags(flags);
  declare_chat_template_flag(flags);
  declare_trainer_flags(flags, "100", "3e-6");
  if (!flags.parse(args)) return 0;

  std::vector<std::string> identity = trainer_identity_flags();
  for (const char* k : kPpoIdentity) identity.emplace_back(k);
  std::vector<std::string> recorded = identity;
  recorded.emplace_back("steps");
  TrainerOptions options = trainer_options(flags, recorded, identity);
  options.label = "ppo";
  // Under `mpirun -np R`: data-parallel over R ranks (algorithms/ppo_data_parallel.h); rank 0
  // does the IO, and asks the critic when there is one.
  Communicator& comm = world_communicator();
  options.comm = &comm;
  const bool lead = comm.rank() == 0;

  PpoOptions o;
  try {
    o.advantage = parse_advantage_kind(flags.str("advantage"));
    o.kl_estimator = parse_kl_estimator(flags.str("kl-estimator"));
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  o.batch_prompts = flags.integer("batch");
  o.samples_per_prompt = flags.integer("samples-per-prompt");
  if (o.samples_per_prompt == 0) o.samples_per_prompt = o.advantage == AdvantageKind::gae ? 1 : 4;
  o.kl_coef = flags.number("kl-coef");
  o.adaptive_kl_target = flags.number("adaptive-kl");
  o.adaptive_kl_horizon = flags.number("adaptive-kl-horizon");
  o.cliprange = flags.number("cliprange");
  const double clip_low = flags.number("clip-low");
  if (clip_low < 0) throw UsageError("--clip-low must be ≥ 0 (0: --cliprange)");
  if (clip_low > 0) {
    if (clip_low >= 1) throw UsageError("--clip-low must be below 1 (the ratio stays positive)");
    o.cliprange_high = o.cliprange;  // the upper side keeps --cliprange unless --clip-high
    o.cliprange = clip_low;
  }
  const double clip_high = flags.number("clip-high");
  if (clip_high < 0) throw UsageError("--clip-high must be ≥ 0 (0: --cliprange)");
  if (clip_high > 0) o.cliprange_high = clip_high;
  try {
    o.loss_aggregation = parse_loss_aggregation(flags.str("loss-aggregation"));
  } catch (const Error& e) {
    throw UsageError(std::string("--loss-aggregation: ") + e.what());
  }
  const std::string scale_rewards = flags.str("scale-rewards");
  if (scale_rewards != "on" && scale_rewards != "off")
    throw UsageError("--scale-rewards must be on or off, got '" + scale_rewards + "'");
  o.scale_rewards = scale_rewards == "on";
  if (!o.scale_rewards && o.advantage != AdvantageKind::grpo)
    throw UsageError("--scale-rewards off is for --advantage grpo");
  o.cliprange_value = flags.number("cliprange-value");
  o.vf_coef = flags.number("vf-coef");
  o.gamma = flags.number("gamma");
  o.lambda = flags.number("lambda");
  o.ppo_epochs = flags.integer("ppo-epochs");
  o.mini_batches = flags.integer("mini-batches");
  o.whiten_rewards = flags.on("whiten-rewards");
  o.max_new_tokens = flags.integer("max-new-tokens");
  o.temperature = flags.number("temperature");
  o.missing_eos_penalty = flags.number("missing-eos-penalty");
  o.max_prompt_length = flags.integer("max-prompt-length");
  o.forward_batch = flags.integer("forward-batch");
  o.seed = static_cast<uint64_t>(flags.integer("seed"));
  try {
    o.validate();
    if (o.adaptive_kl_target > 0)
      AdaptiveKlController(o.kl_coef, o.adaptive_kl_target, o.adaptive_kl_horizon);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  const bool critic = flags.given("critic-api");
  const bool reward_model = flags.given("reward-model");
  const bool server = flags.given("reward-url");
  const std::vector<RewardRule> rules = reward_rules(flags);
  if (int(critic) + int(reward_model) + int(server) > 1)
    throw UsageError(
        "give at most one of --reward-model, --critic-api and --reward-url (--reward rules add "
        "to any of them)");
  if (!critic && !reward_model && !server && rules.empty())
    throw UsageError("give a reward: --reward-model, --critic-api, --reward-url or --reward");
  check_reward_url_flags(flags);
  if (critic && flags.str("critic-model").empty())
    throw UsageError("--critic-api needs --critic-model");
  if (!critic) {
    for (const char* f :
         {"critic-model", "critic-reference", "critic-template", "critic-unparsed-reward"}) {
      if (flags.given(f)) throw UsageError(std::string("--") + f + " needs --critic-api");
    }
  }
  if (o.advantage != AdvantageKind::gae && flags.given("value-model")) {
    throw UsageError("--value-model is for --advantage gae; rloo and grpo use no value model");
  }
  if ((o.sequences_per_step() / o.mini_batches) % options.grad_accum != 0) {
    throw UsageError("--grad-accum must divide the sequences of a mini-batch");
  }
  try {
    check_ppo_ranks(o, options.grad_accum, comm.size());
  } catch (const Error& e) {
    throw UsageError(e.what());
  }

  if (flags.on("dry-run")) {
    if (!critic)
      throw UsageError("--dry-run estimates the critic's requests: it needs --critic-api");
    const CriticRewardOptions co = critic_reward_options(flags);
    JudgeTemplate judge = co.judge                        ? *co.judge
                          : co.mode == CriticMode::rating ? JudgeTemplate::default_rating()
                                                          : JudgeTemplate::default_pairwise();
    judge.set_max_tokens(co.max_tokens);
    const std::string longest(static_cast<size_t>(4 * o.max_new_tokens), 'x');
    const std::vector<std::string> texts = load_prompts(flags.str("prompts"));
    std::vector<CompletionRequest> one_each;
    for (const std::string& p : texts) {
      if (co.mode == CriticMode::rating) {
        one_each.push_back(judge.rating_request(p, longest, ""));
        continue;
      }
      auto ref = co.references.find(p);
      std::vector<bool> x_as_a;
      for (CompletionRequest& r :
           pair_requests(judge, p, longest, ref == co.references.end() ? "" : ref->second,
                         co.both_orders, "", x_as_a))
        one_each.push_back(std::move(r));
    }
    if (lead)
      print_dry_run(
          "ppo: critic",
          scaled_estimate(one_each, texts.size(), flags.integer("steps") * o.sequences_per_step()));
    return 0;
  }

  const Device device = training_device(flags);
  options.device_comm = &communicator_for(device);  // gradients and optimizer shards
  const std::string model_dir = flags.str("model");
  Transformer policy = load_model(model_dir, device, model_dtype(flags));
  const bool adapters = prepare_for_training(policy, flags, o.seed, "ppo", lead);
  // The reference is the starting policy. With adapters it is the same base with the adapters
  // off (a second handle, no copy of the weights); otherwise a frozen copy.
  Transformer reference = adapters ? policy : load_model(model_dir, device, model_dtype(flags));
  if (adapters) {
    reference.set_adapters_enabled(false);
  } else {
    reference.set_requires_grad(false);
  }
  const Tokenizer tokenizer = Tokenizer::load_dir(model_dir);
  options.tokenizer_source = model_dir;
  options.base_model = model_dir;
  o.chat = chat_template_from_flags(flags, model_dir, lead ? "ppo" : nullptr);

  // Without a reward model, the value model of gae starts from the policy.
  const std::string rm_dir = reward_model ? flags.str("reward-model") : model_dir;
  const std::string prompts_path = flags.str("prompts");
  std::unique_ptr<RewardFunction> reward;
  CriticReward* critic_reward = nullptr;
  ServerReward* server_reward = nullptr;
  if (server) {
    // As the critic: every rank checks the flags, rank 0 alone asks the server.
    RewardServerOptions server_options = reward_server_options(flags, options.out_dir);
    if (lead) {
      std::filesystem::create_directories(options.out_dir);
      auto r = std::make_unique<ServerReward>(std::move(server_options),
                                              PromptColumns::load(prompts_path));
      server_reward = r.get();
      reward = std::move(r);
    } else {
      reward = std::make_unique<LeadRankScores>();
    }
  } else if (critic) {
    // Every rank checks the flags; rank 0 alone talks to the critic (CriticReward's
    // scores_on_lead_rank), the others hold a stand-in that says so.
    ClientOptions client = critic_client_options(flags, options.out_dir);
    CriticRewardOptions critic_options = critic_reward_options(flags);
    if (lead) {
      std::filesystem::create_directories(options.out_dir);
      auto r = std::make_unique<CriticReward>(std::move(client), std::move(critic_options));
      critic_reward = r.get();
      reward = std::move(r);
    } else {
      reward = std::make_unique<LeadRankScores>();
    }
  } else if (reward_model) {
    reward = reward_model_from_flags(flags, rm_dir, o.max_prompt_length, o.forward_batch, device);
  }
  // Each rank scores its own sequences by the rules.
  reward = with_rule_rewards(std::move(reward), rules, prompts_path);

  std::optional<Transformer> value;
  if (o.advantage == AdvantageKind::gae) {
    const std::string value_dir = flags.given("value-model") ? flags.str("value-model") : rm_dir;
    value.emplace(load_model(value_dir, device, model_dtype(flags)));
    if (ensure_scalar_head(*value, o.seed) && lead) {
      std::fprintf(stderr, "ppo: %s has no scalar head; added score.weight for the value model\n",
                   value_dir.c_str());
    }
    value->set_recompute(flags.on("recompute"));
    if (adapters) {
      // The value model trains adapters shaped as the policy's, and its own copy of the head.
      LoraConfig lora = policy.lora_config();
      lora.modules_to_save = {"score"};
      value->add_lora(lora, o.seed ^ 0x5eedULL);
      value->freeze_base();
      o.value_base_model = value_dir;
    } else {
      value->set_requires_grad(true);
    }
  }

  const std::vector<std::string> prompts =
      load_single_turn_prompts(flags.str("prompts"), o.chat, "ppo");
  RLAIF_CHECK(!prompts.empty(), flags.str("prompts"), " holds no prompts");
  const std::string ranks_note =
      comm.size() > 1 ? ", " + std::to_string(comm.size()) + " data-parallel ranks" : "";
  if (lead)
    std::fprintf(stderr,
                 "ppo: %zu prompts, %s advantages, %lld sequences per step (%lld x %lld), %lld "
                 "policy parameters%s\n",
                 prompts.size(), advantage_kind_name(o.advantage),
                 static_cast<long long>(o.sequences_per_step()),
                 static_cast<long long>(o.batch_prompts),
                 static_cast<long long>(o.samples_per_prompt),
                 static_cast<long long>(policy.config().parameter_count()), ranks_note.c_str());

  PpoModels models{&policy, &reference, value ? &*value : nullptr, &tokenizer, reward.get()};
  PpoResult result = train_ppo(models, prompts, o, options);
  if (critic_reward != nullptr) {
    std::fprintf(stderr, "ppo: critic: %lld answers, %lld unparsed; %s\n",
                 static_cast<long long>(critic_reward->judged()),
                 static_cast<long long>(critic_reward->unparsed()),
                 critic_reward->client().usage_summary().c_str());
    report_spend("ppo: critic", critic_reward->client());
  }
  if (server_reward != nullptr) {
    std::fprintf(stderr, "ppo: reward server: %s\n",
                 server_reward->client().usage_summary().c_str());
  }
  if (result.interrupted) return 128 + result.signal;
  if (!lead) return result.spend_limit_stop.empty() ? 0 : kSpendLimitExit;
  std::printf("{\"steps\": %lld", static_cast<long long>(result.steps_done));
  for (const char* key : {"score", "kl", "entropy", "response_length"}) {
    for (const auto& [name, v] : result.last_metrics) {
      if (name == key) std::printf(", \"%s\": %.6f", key, v);
    }
  }
  std::printf(", \"kl_coef\": %.6g", result.kl_coef);
  return end_summary_line(critic_reward != nullptr ? &critic_reward->client() : nullptr,
                          result.spend_limit_stop, result.checkpoint, options.out_dir);
}

}  // namespace rlaif::cli
