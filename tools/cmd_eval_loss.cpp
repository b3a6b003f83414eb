// `rlaif eval-loss`: mean next-token cross-entropy of a model over consecutive windows of a token
// stream (text tokenized with the model's tokenizer, or an llm.c shard).
#include <cmath>
#include <cstdio>
#include <optional>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "io/model_dir.h"
#include "io/progress.h"
#include "io/token_data.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"
#include "tools/lora_flags.h"

namespace rlaif::cli {

int eval_loss_main(const std::vector<std::string>& args) {
  Flags flags("eval-loss",
              "Mean next-token cross-entropy over consecutive windows of the data, printed as\n"
              "JSON on stdout. Batch k reads tokens [k*B*T, (k+1)*B*T] (targets shifted by one).");
  flags.option("model", "", "model directory", true)
      .option("data", "", "text file or llm.c token shard", true)
      .option("batch", "4", "sequences per batch (B)")
      .option("seq", "0", "tokens per sequence (T; 0 = min(context, 256))")
      .option("batches", "0", "batches to evaluate (0 = all that fit)")
      .option("device", "cpu", "cpu or cuda[:N]");
  declare_adapter_flag(flags);
  if (!flags.parse(args)) return 0;
  const std::string dir = flags.str("model"), data = flags.str("data");
  Transformer model = load_model(dir, parse_device(flags.str("device")));
  apply_adapter_flag(model, flags);
  std::optional<Tokenizer> tok;
  if (Tokenizer::exists_in_dir(dir)) tok = Tokenizer::load_dir(dir);
  std::vector<int32_t> tokens = load_tokens(data, tok ? &*tok : nullptr);
  for (size_t i = 0; i < tokens.size(); ++i) {
    RLAIF_CHECK(tokens[i] >= 0 && tokens[i] < model.config().vocab_size, data, ": token ",
                tokens[i], " at position ", i, " is outside the model's vocabulary of ",
                model.config().vocab_size);
  }

  const int64_t B = flags.integer("batch");
  int64_t T = flags.integer("seq");
  if (T <= 0) T = std::min<int64_t>(model.config().max_position_embeddings, 256);
  if (B <= 0) throw UsageError("--batch must be positive");
  if (T > model.config().max_position_embeddings) {
    throw UsageError("--seq " + std::to_string(T) + " exceeds the model's context of " +
                     std::to_string(model.config().max_position_embeddings));
  }
  const int64_t available = (static_cast<int64_t>(tokens.size()) - 1) / (B * T);
  RLAIF_CHECK(available > 0, data, " has ", tokens.size(), " tokens, fewer than one batch of ", B,
              "x", T, "+1: lower --batch or --seq");
  int64_t batches = flags.integer("batches");
  if (batches <= 0 || batches > available) batches = available;

  NoGradGuard no_grad;
  std::vector<int32_t> positions(static_cast<size_t>(B * T));
  for (int64_t i = 0; i < B * T; ++i)
    positions[static_cast<size_t>(i)] = static_cast<int32_t>(i % T);
  Tensor pos = Tensor::from_vector(positions, {B, T}).to(model.device());
  Progress progress("eval-loss", batches, "batches");
  double total = 0.0;
  for (int64_t k = 0; k < batches; ++k) {
    auto begin = tokens.begin() + k * B * T;
    std::vector<int32_t> x(begin, begin + B * T), y(begin + 1, begin + B * T + 1);
    TransformerInput input{Tensor::from_vector(x, {B, T}).to(model.device()), pos, Tensor()};
    Tensor targets = Tensor::from_vector(y, {B, T}).to(model.device());
    total += mean_all(model.token_losses(input, targets)).data().item();
    progress.update(k + 1, (k + 1) * B * T);
  }
  progress.finish();
  double loss = total / static_cast<double>(batches);
  std::printf(
      "{\"loss\": %.6f, \"perplexity\": %.4f, \"tokens\": %lld, \"batches\": %lld, "
      "\"batch\": %lld, \"seq\": %lld}\n",
      loss, std::exp(loss), static_cast<long long>(batches * B * T),
      static_cast<long long>(batches), static_cast<long long>(B), static_cast<long long>(T));
  return 0;
}

}  // namespace rlaif::cli
