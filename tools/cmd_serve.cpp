// `rlaif serve`: a model directory behind an OpenAI-compatible HTTP API (io/openai_server.h), so
// that `rlaif distill`/`label`/`eval` or any OpenAI client can use a locally trained model as a
// teacher or critic. Runs until SIGINT/SIGTERM, then drains: stops accepting, lets the requests
// in flight finish (up to --drain-timeout), and exits 0.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "algorithms/stop_signals.h"
#include "io/http_batch.h"
#include "io/model_dir.h"
#include "io/openai_server.h"
#include "io/tokenizer.h"
#include "tools/chat_flags.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"
#include "tools/lora_flags.h"
#include "tools/train_flags.h"

namespace rlaif::cli {
namespace {

// The directory's last component, ignoring trailing slashes ("runs/sft/" -> "sft").
std::string served_name(const std::string& dir) {
  std::filesystem::path p(dir);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();
  std::string name = p.filename().string();
  return name.empty() || name == "." || name == ".." ? "rlaif" : name;
}

bool is_loopback(const std::string& host) {
  return is_loopback_host(host.find(':') != std::string::npos ? "[" + host + "]" : host);
}

// The key from --api-key, --api-key-file (its first line) or RLAIF_API_KEY, in that order of
// precedence; "" when none is given.
std::string api_key_from(const Flags& flags) {
  if (flags.given("api-key") && flags.given("api-key-file"))
    throw UsageError("--api-key and --api-key-file are alternatives: give one");
  if (flags.given("api-key")) {
    if (flags.str("api-key").empty()) throw UsageError("--api-key is empty");
    return flags.str("api-key");
  }
  if (flags.given("api-key-file")) {
    const std::string path = flags.str("api-key-file");
    std::ifstream in(path);
    if (!in) throw UsageError("--api-key-file " + path + ": cannot read it");
    std::string key;
    std::getline(in, key);
    while (!key.empty() && (key.back() == '\r' || key.back() == ' ' || key.back() == '\t'))
      key.pop_back();
    if (key.empty()) throw UsageError("--api-key-file " + path + ": its first line is empty");
    return key;
  }
  const char* env = std::getenv("RLAIF_API_KEY");
  return env != nullptr ? env : "";
}

}  // namespace

int serve_main(const std::vector<std::string>& args) {
  Flags flags("serve",
              "Serve a model over an OpenAI-compatible API: GET /v1/models, POST\n"
              "/v1/chat/completions and /v1/completions (streaming included). Requests are\n"
              "generated in batches, continuously: queued requests take the rows of those\n"
              "that ended; a response never depends on what it was batched with.\n"
              "Prints 'listening on http://HOST:PORT' on stdout once it accepts connections;\n"
              "stops cleanly on SIGINT/SIGTERM.");
  flags.option("model", "", "model directory (config.json, weights, tokenizer)", true)
      .option("name", "", "model name to report (default: the directory's name)")
      .option("host", "127.0.0.1", "address to listen on; anything but loopback needs an API key")
      .option("port", "8080", "TCP port; 0 = any free port")
      .option("device", "cpu", "cpu or cuda[:N]")
      .option("dtype", "f32", "parameter dtype: f32, or bf16 (GPU only)")
      .option("max-batch", "16", "requests generated together at most")
      .option("max-body-bytes", "1048576", "largest request body accepted (larger: 413)")
      .option("max-tokens-limit", "2048",
              "largest max_tokens accepted (larger: 400); also the default max_tokens")
      .option("max-concurrent", "64", "completion requests in flight at once (more: 429)")
      .option("seed", "0", "sampling seed of requests that send none")
      .option("request-timeout", "600",
              "seconds a completion request may spend queued and generating (then 504)")
      .option("drain-timeout", "30",
              "on SIGINT/SIGTERM, seconds to let requests in flight finish before stopping")
      .option("api-key", "",
              "require 'Authorization: Bearer KEY' on every request (default: RLAIF_API_KEY)")
      .option("api-key-file", "", "read the API key from this file's first line")
      .flag("quiet", "do not log one line per request on stderr");
  declare_chat_template_flag(flags);
  declare_adapter_flag(flags);
  if (!flags.parse(args)) return 0;

  ServerOptions options;
  options.host = flags.str("host");
  const int64_t port = flags.integer("port");
  if (port < 0 || port > 65535) throw UsageError("--port must be in [0, 65535]");
  options.port = static_cast<int>(port);
  options.model_name = flags.given("name") ? flags.str("name") : served_name(flags.str("model"));
  options.max_batch = flags.integer("max-batch");
  const int64_t body = flags.integer("max-body-bytes");
  if (body < 1) throw UsageError("--max-body-bytes must be >= 1");
  options.max_body_bytes = static_cast<size_t>(body);
  options.max_tokens_limit = flags.integer("max-tokens-limit");
  const int64_t concurrent = flags.integer("max-concurrent");
  if (concurrent < 1 || concurrent > 100000)
    throw UsageError("--max-concurrent must be in [1, 100000]");
  options.max_concurrent = static_cast<int>(concurrent);
  options.chat_template = chat_template_from_flags(flags, flags.str("model"), "serve");
  options.seed = static_cast<uint64_t>(flags.integer("seed"));
  options.log_requests = !flags.on("quiet");
  if (options.max_batch < 1) throw UsageError("--max-batch must be >= 1");
  if (options.max_tokens_limit < 1) throw UsageError("--max-tokens-limit must be >= 1");
  options.request_timeout_s = flags.number("request-timeout");
  if (!(options.request_timeout_s > 0))
    throw UsageError("--request-timeout must be a positive number of seconds");
  const double drain_s = flags.number("drain-timeout");
  if (!(drain_s >= 0)) throw UsageError("--drain-timeout must be >= 0 seconds");
  options.api_key = api_key_from(flags);
  if (options.api_key.empty() && !is_loopback(options.host))
    throw UsageError("--host " + options.host +
                     " is not a loopback address and no API key was given: anyone who can reach "
                     "it could use the model. Give --api-key (or RLAIF_API_KEY, or "
                     "--api-key-file), or listen on --host 127.0.0.1");

  const std::string dir = flags.str("model");
  Transformer model = load_model(dir, parse_device(flags.str("device")), model_dtype(flags));
  apply_adapter_flag(model, flags);
  Tokenizer tokenizer = Tokenizer::load_dir(dir);

  StopSignals signals;  // before start(): a signal from then on stops the server cleanly
  OpenAiServer server(model, tokenizer, options);
  const int bound = server.start();
  std::fprintf(stderr, "rlaif serve: model '%s' (%s, context %lld tokens), max batch %lld%s\n",
               options.model_name.c_str(), dir.c_str(),
               static_cast<long long>(model.config().max_position_embeddings),
               static_cast<long long>(options.max_batch),
               options.api_key.empty() ? "" : ", API key required");
  const bool v6 = options.host.find(':') != std::string::npos;
  std::printf("listening on http://%s%s%s:%d\n", v6 ? "[" : "", options.host.c_str(), v6 ? "]" : "",
              bound);
  std::fflush(stdout);

  while (signals.pending() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // A second signal during the drain is the user insisting: StopSignals lets it kill the process.
  std::fprintf(stderr,
               "rlaif serve: signal %d, draining: %lld requests in flight, up to %g s "
               "(--drain-timeout)\n",
               signals.pending(), static_cast<long long>(server.stats().in_flight), drain_s);
  const bool drained = server.drain_and_stop(drain_s);
  const ServerStats st = server.stats();
  if (!drained)
    std::fprintf(stderr, "rlaif serve: --drain-timeout passed; the rest were answered 503\n");
  std::fprintf(stderr,
               "rlaif serve: stopped after %lld requests in %lld batches (%lld joined a running "
               "batch)\n",
               static_cast<long long>(st.requests), static_cast<long long>(st.batches),
               static_cast<long long>(st.joined));
  return 0;
}

}  // namespace rlaif::cli
