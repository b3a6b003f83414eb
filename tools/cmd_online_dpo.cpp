// `rlaif online-dpo`: DPO on the policy's own samples, judged as training goes
// (algorithms/online_dpo.h).
#include <cstdio>
#include <filesystem>
#include <memory>

#include "algorithms/online_dpo.h"
#include "algorithms/prompt_columns.h"
#include "algorithms/reward_function.h"
#include "io/datasets.h"
#include "io/judge.h"
#include "io/model_dir.h"
#include "kernels/device_communicator.h"
#include "runtime/communicator.h"
#include "tools/api_flags.h"
#include "tools/chat_flags.h"
#include "tools/commands.h"
#include "tools/critic_flags.h"
#include "tools/dpo_loss_flags.h"
#include "tools/lora_flags.h"
#include "tools/reward_flags.h"
#include "tools/train_flags.h"

namespace rlaif::cli {
namespace {

// The flags that change what a run computes (a resume must repeat them).
const char* const kOnlineDpoIdentity[] = {"ref",
                                          "prompts",
                                          "batch",
                                          "rounds",
                                          "max-new-tokens",
                                          "temperature",
                                          "chat-template",
                                          "max-prompt-length",
                                          "reward-model",
                                          "rm-max-length",
                                          "critic-model",
                                          "critic-template",
                                          "critic-both-orders",
                                          "critic-max-tokens"};

}  // namespace

int online_dpo_main(const std::vector<std::string>& args) {
  Flags flags(
      "online-dpo",
      "Online DPO (Guo et al., 2024): every micro-batch samples two completions for each of\n"
      "--batch prompts from the current policy, a judge picks the better (the chosen answer;\n"
      "ties and unparsed verdicts are skipped), and the policy takes a DPO step on those pairs\n"
      "against the frozen reference (every --loss of `rlaif dpo`). The judge is a reward, the\n"
      "higher score winning: a reward model (--reward-model), a reward server (--reward-url)\n"
      "and/or rule rewards (--reward, as `rlaif ppo` takes them); or an LLM critic over the\n"
      "OpenAI-compatible API comparing the two (--critic-api, --critic-model;\n"
      "--critic-both-orders asks in both orders and counts a disagreement as a tie), whose\n"
      "answers are cached in --out/requests.jsonl so a resumed run asks nothing twice. With\n"
      "--rounds N the run is iterative: N rounds, each sampling and judging all its pairs with\n"
      "the policy frozen at the round's start (kept in --out/rounds/), then training on them.\n"
      "Logs TRL's metrics (rewards/*, objective/kl, objective/scores, val/contain_eos_token)\n"
      "and judge/pairs, judge/skipped_fraction. Runs on one rank.");
  flags.option("model", "", "policy to start from (an SFT model)", true)
      .option("ref", "", "reference model directory (default: --model)")
      .option("prompts", "", "prompts: JSONL or JSON ({\"prompt\": ...} per record)", true)
      .option("batch", "8", "prompts per micro-batch (two samples each)")
      .option("rounds", "0", "0: online (fresh pairs every micro-batch); N: N iterative rounds")
      .option("max-new-tokens", "64", "response tokens at most")
      .option("temperature", "0.9", "sampling temperature (> 0)")
      .option("max-prompt-length", "256", "prompt tokens at most (cut from the left)")
      .option("forward-batch", "16",
              "sequences generated together (continuously: a finished one's row takes the next)")
      .option("reward-model", "", "judge: a reward model directory (the higher score wins)")
      .option("rm-max-length", "512", "tokens the reward model reads at most")
      .option("critic-template", "", "judge: a pairwise template file (see `rlaif label`)")
      .flag("critic-both-orders", "judge: ask the critic in both orders (a disagreement ties)")
      .option("critic-max-tokens", "16", "tokens the critic may answer with");
  declare_reward_flags(flags);
  declare_critic_client_flags(flags);
  declare_dpo_loss_flags(flags);
  declare_chat_template_flag(flags);
  declare_trainer_flags(flags, "100", "5e-7");
  if (!flags.parse(args)) return 0;

  std::vector<std::string> identity = trainer_identity_flags();
  for (const std::string& k : dpo_loss_identity_flags()) identity.push_back(k);
  for (const char* k : kOnlineDpoIdentity) identity.emplace_back(k);
  std::vector<std::string> recorded = identity;
  recorded.insert(recorded.end(), {"model", "steps", "critic-api"});
  TrainerOptions options = trainer_options(flags, recorded, identity);
  options.label = "online-dpo";
  Communicator& comm = world_communicator();
  if (comm.size() > 1)
    throw UsageError("online-dpo runs on one rank (it samples and judges on the training rank)");
  options.comm = &comm;

  OnlineDpoOptions o;
  o.dpo = dpo_loss_options(flags);
  o.batch_prompts = flags.integer("batch");
  o.grad_accum = options.grad_accum;
  o.steps = options.steps;
  o.rounds = flags.integer("rounds");
  o.rounds_dir = (std::filesystem::path(options.out_dir) / "rounds").string();
  o.max_new_tokens = flags.integer("max-new-tokens");
  o.temperature = flags.number("temperature");
  o.max_prompt_length = flags.integer("max-prompt-length");
  o.forward_batch = flags.integer("forward-batch");
  o.seed = static_cast<uint64_t>(flags.integer("seed"));
  if (o.batch_prompts < 1) throw UsageError("--batch must be at least 1");
  if (o.rounds < 0) throw UsageError("--rounds must be ≥ 0 (0: online)");
  if (o.rounds > o.steps)
    throw UsageError("--rounds " + std::to_string(o.rounds) + " exceeds --steps " +
                     std::to_string(o.steps));
  if (o.max_new_tokens < 1) throw UsageError("--max-new-tokens must be at least 1");
  if (!(o.temperature > 0)) throw UsageError("--temperature must be positive");
  if (o.max_prompt_length < 1) throw UsageError("--max-prompt-length must be at least 1");
  if (o.forward_batch < 1) throw UsageError("--forward-batch must be at least 1");
  const bool critic = flags.given("critic-api");
  const std::vector<RewardRule> rules = reward_rules(flags);
  const bool scored = flags.given("reward-model") || flags.given("reward-url") || !rules.empty();
  if (critic == scored)
    throw UsageError(
        "give exactly one judge: a reward (--reward-model, --reward-url, --reward) or "
        "--critic-api");
  if (flags.given("reward-model") && flags.given("reward-url"))
    throw UsageError(
        "give at most one of --reward-model and --reward-url (--reward rules add to "
        "either)");
  check_reward_url_flags(flags);
  if (!critic) {
    for (const char* f : {"critic-model", "critic-template", "critic-both-orders"}) {
      if (flags.given(f)) throw UsageError(std::string("--") + f + " needs --critic-api");
    }
  }
  if (flags.integer("critic-max-tokens") < 1)
    throw UsageError("--critic-max-tokens must be at least 1");
  if (flags.on("dry-run")) {
    if (!critic)
      throw UsageError("--dry-run estimates the critic's requests: it needs --critic-api");
    JudgeTemplate judge =
        flags.given("critic-template")
            ? JudgeTemplate::from_file(JudgeTemplate::Kind::pairwise, flags.str("critic-template"))
            : JudgeTemplate::default_pairwise();
    judge.set_max_tokens(flags.integer("critic-max-tokens"));
    const std::string longest(static_cast<size_t>(4 * flags.integer("max-new-tokens")), 'x');
    const std::vector<std::string> texts = load_prompts(flags.str("prompts"));
    std::vector<CompletionRequest> one_each;
    for (const std::string& p : texts) {
      std::vector<bool> x_as_a;
      for (CompletionRequest& r :
           pair_requests(judge, p, longest, longest, flags.on("critic-both-orders"), "", x_as_a))
        one_each.push_back(std::move(r));
    }
    print_dry_run(
        "online-dpo: critic",
        scaled_estimate(one_each, texts.size(),
                        flags.integer("steps") * flags.integer("batch") * options.grad_accum));
    return 0;
  }

  const Device device = training_device(flags);
  options.device_comm = &communicator_for(device);
  const std::string model_dir = flags.str("model");
  Transformer policy = load_model(model_dir, device, model_dtype(flags));
  const bool adapters = prepare_for_training(policy, flags, o.seed, "online-dpo", true);
  // The reference: --ref, or the starting policy (with adapters, the same base with the
  // adapters off: a second handle, no copy of the weights).
  const bool own_ref = flags.given("ref") || !adapters;
  Transformer reference = own_ref ? load_model(flags.given("ref") ? flags.str("ref") : model_dir,
                                               device, model_dtype(flags))
                                  : policy;
  if (own_ref) {
    reference.set_requires_grad(false);
  } else {
    reference.set_adapters_enabled(false);
  }
  const Tokenizer tokenizer = Tokenizer::load_dir(model_dir);
  options.tokenizer_source = model_dir;
  options.base_model = model_dir;
  o.chat = chat_template_from_flags(flags, model_dir, "online-dpo");

  std::unique_ptr<RewardFunction> reward;
  std::unique_ptr<PairJudge> judge;
  CriticPairJudge* critic_judge = nullptr;
  if (critic) {
    ClientOptions client = critic_client_options(flags, options.out_dir);
    JudgeTemplate judge_template =
        flags.given("critic-template")
            ? JudgeTemplate::from_file(JudgeTemplate::Kind::pairwise, flags.str("critic-template"))
            : JudgeTemplate::default_pairwise();
    judge_template.set_max_tokens(flags.integer("critic-max-tokens"));
    std::filesystem::create_directories(options.out_dir);
    auto j = std::make_unique<CriticPairJudge>(std::move(client), std::move(judge_template),
                                               flags.on("critic-both-orders"));
    critic_judge = j.get();
    judge = std::move(j);
  } else {
    if (flags.given("reward-model")) {
      reward = reward_model_from_flags(flags, flags.str("reward-model"), o.max_prompt_length,
                                       o.forward_batch, device);
    } else if (flags.given("reward-url")) {
      std::filesystem::create_directories(options.out_dir);
      reward = std::make_unique<ServerReward>(reward_server_options(flags, options.out_dir),
                                              PromptColumns::load(flags.str("prompts")));
    }
    reward = with_rule_rewards(std::move(reward), rules, flags.str("prompts"));
    judge = std::make_unique<ScoreJudge>(*reward);
  }

  std::vector<std::string> prompts =
      load_single_turn_prompts(flags.str("prompts"), o.chat, "online-dpo");
  RLAIF_CHECK(!prompts.empty(), flags.str("prompts"), " holds no prompts");
  std::fprintf(stderr, "online-dpo: %zu prompts, %s, %lld pairs judged per step (%lld x %lld)\n",
               prompts.size(),
               o.rounds > 0 ? (std::to_string(o.rounds) + " rounds").c_str() : "online",
               static_cast<long long>(o.batch_prompts * o.grad_accum),
               static_cast<long long>(o.batch_prompts), static_cast<long long>(o.grad_accum));

  OnlineDpoTask task(policy, reference, tokenizer, std::move(prompts), *judge, o);
  TrainResult result = rlaif::train(policy, task, options);
  if (critic_judge != nullptr) {
    std::fprintf(stderr, "online-dpo: critic: %s\n",
                 critic_judge->client().usage_summary().c_str());
    report_spend("online-dpo: critic", critic_judge->client());
  }
  return finish_training(result, options, true,
                         critic_judge != nullptr ? &critic_judge->client() : nullptr);
}

}  // namespace rlaif::cli
