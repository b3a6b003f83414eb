// `rlaif bench serve`: `rlaif serve`'s server (io/openai_server.h) started in-process on a free
// loopback port and loaded by client threads (tools/serve_load.h) at several concurrencies,
// batched (--max-batch) and unbatched (max batch 1) in the same run. With --soak N, instead: N
// requests, some malformed and some abandoned before or during their answer, with the process's
// resident memory sampled as they go; fails when it still grows over the second half.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>

#include "io/model_dir.h"
#include "io/openai_server.h"
#include "io/tokenizer.h"
#include "tools/bench_common.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"
#include "tools/serve_load.h"

namespace rlaif::cli {
namespace {

struct Setup {
  const Transformer* model = nullptr;
  const Tokenizer* tokenizer = nullptr;
  int64_t max_tokens = 32;
};

ServerOptions server_options(int64_t max_batch, int max_concurrent) {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.model_name = "bench";
  o.max_batch = max_batch;
  o.max_concurrent = max_concurrent;
  return o;
}

struct Row {
  std::string config;
  int64_t max_batch = 0, concurrency = 0;
  LoadResult load;
  double requests_per_s = 0, tokens_per_s = 0, p50_ms = 0, p99_ms = 0;
  double first_p50_ms = NAN, first_p99_ms = NAN;  // --stream: until the first text
};

int bench_load(const Flags& flags, const Setup& s) {
  const int64_t requests = flags.integer("requests");
  if (requests < 1) throw UsageError("--requests must be >= 1");
  const std::vector<int64_t> levels =
      positive_int_list("concurrency", flags.str("concurrency"), 4096);
  const int64_t max_batch = flags.integer("max-batch");
  if (max_batch < 1) throw UsageError("--max-batch must be >= 1");
  const int most = static_cast<int>(*std::max_element(levels.begin(), levels.end()));
  const bool stream = flags.on("stream");

  std::printf("bench serve: %s, %lld requests per concurrency, max_tokens %s%lld, greedy%s\n",
              flags.str("model").c_str(), static_cast<long long>(requests),
              flags.on("mixed-lengths") ? "1 to " : "", static_cast<long long>(s.max_tokens),
              stream ? ", streamed" : "");
  std::vector<Row> rows;
  for (const int64_t batch : {max_batch, int64_t{1}}) {
    OpenAiServer server(*s.model, *s.tokenizer, server_options(batch, most));
    const int port = server.start();
    LoadOptions warm;  // first-use costs (allocator growth, thread start) out of the figures
    warm.port = port;
    warm.requests = std::min<int64_t>(8, requests);
    warm.concurrency = static_cast<int>(std::min<int64_t>(8, batch));
    warm.max_tokens = s.max_tokens;
    warm.mixed_lengths = flags.on("mixed-lengths");
    if (stream) warm.kind_of = [](int64_t) { return LoadKind::streamed_chat; };
    run_load(warm);
    for (const int64_t c : levels) {
      LoadOptions o = warm;
      o.requests = requests;
      o.concurrency = static_cast<int>(c);
      Row r;
      r.config = batch == 1 ? "unbatched" : "batched";
      r.max_batch = batch;
      r.concurrency = c;
      r.load = run_load(o);
      r.requests_per_s = static_cast<double>(requests - r.load.errors) / r.load.wall_s;
      r.tokens_per_s = static_cast<double>(r.load.completion_tokens) / r.load.wall_s;
      r.p50_ms = quantile(r.load.latencies_s, 0.5) * 1e3;
      r.p99_ms = quantile(r.load.latencies_s, 0.99) * 1e3;
      if (stream) {
        r.first_p50_ms = quantile(r.load.first_text_s, 0.5) * 1e3;
        r.first_p99_ms = quantile(r.load.first_text_s, 0.99) * 1e3;
      }
      if (!r.load.first_error.empty())
        std::fprintf(stderr, "bench serve: %s, concurrency %lld: first error: %s\n",
                     r.config.c_str(), static_cast<long long>(c), r.load.first_error.c_str());
      rows.push_back(r);
    }
    server.stop();
  }

  std::vector<std::string> header = {"config", "max batch", "concurrency", "req/s",
                                     "tok/s",  "p50 ms",    "p99 ms",      "errors"};
  if (stream) header.insert(header.end() - 1, {"first text p50 ms", "first text p99 ms"});
  Table table(header);
  std::vector<JsonObject> results, ratios;
  for (const Row& r : rows) {
    std::vector<std::string> cells = {r.config,
                                      std::to_string(r.max_batch),
                                      std::to_string(r.concurrency),
                                      fixed(r.requests_per_s, 1),
                                      fixed(r.tokens_per_s, 1),
                                      fixed(r.p50_ms, 1),
                                      fixed(r.p99_ms, 1),
                                      std::to_string(r.load.errors)};
    if (stream) cells.insert(cells.end() - 1, {fixed(r.first_p50_ms, 1), fixed(r.first_p99_ms, 1)});
    table.add(cells);
    JsonObject j;
    j.str("name", r.config + "_c" + std::to_string(r.concurrency))
        .str("config", r.config)
        .integer("max_batch", r.max_batch)
        .integer("concurrency", r.concurrency)
        .integer("requests", r.load.requests)
        .integer("errors", r.load.errors)
        .num("requests_per_s", r.requests_per_s)
        .num("tokens_per_s", r.tokens_per_s)
        .num("p50_ms", r.p50_ms)
        .num("p99_ms", r.p99_ms);
    if (stream) j.num("first_text_p50_ms", r.first_p50_ms).num("first_text_p99_ms", r.first_p99_ms);
    results.push_back(j);
  }
  table.print();
  std::printf("\nbatched/unbatched throughput (tok/s):");
  const size_t n = levels.size();
  for (size_t i = 0; i < n; ++i) {
    const double ratio = rows[i].tokens_per_s / rows[n + i].tokens_per_s;
    std::printf("  concurrency %lld: %sx", static_cast<long long>(levels[i]),
                fixed(ratio, 2).c_str());
    JsonObject j;
    j.integer("concurrency", levels[i]).num("batched_over_unbatched", ratio);
    ratios.push_back(j);
  }
  std::printf("\n");

  if (!flags.str("json").empty()) {
    JsonObject json;
    json.str("bench", "serve")
        .str("model", flags.str("model"))
        .integer("params", s.model->config().parameter_count())
        .integer("requests", requests)
        .integer("max_tokens", s.max_tokens)
        .integer("stream", stream ? 1 : 0)
        .integer("mixed_lengths", flags.on("mixed-lengths") ? 1 : 0)
        .array("results", results)
        .array("ratios", ratios);
    write_json_file(flags.str("json"), json);
  }
  int64_t errors = 0;
  for (const Row& r : rows) errors += r.load.errors;
  return errors == 0 ? 0 : 1;
}

// 1 in 10 requests malformed JSON, 1 in 10 an invalid field, 1 in 10 abandoned before the answer,
// 1 in 10 abandoned after its first bytes; the rest ordinary chat completions.
LoadKind soak_kind(int64_t i) {
  switch (i % 10) {
    case 3:
      return LoadKind::malformed_json;
    case 5:
      return LoadKind::invalid_field;
    case 7:
      return LoadKind::abandoned_early;
    case 9:
      return LoadKind::abandoned_stream;
    default:
      return LoadKind::chat;
  }
}

int bench_soak(const Flags& flags, const Setup& s) {
  const int64_t total = flags.integer("soak");
  if (total < 100) throw UsageError("--soak must be at least 100 requests");
  const int64_t concurrency = flags.integer("soak-concurrency");
  if (concurrency < 1 || concurrency > 4096)
    throw UsageError("--soak-concurrency must be in [1, 4096]");
  const double bound_mib = flags.number("soak-max-growth-mib");
  if (!(bound_mib >= 0)) throw UsageError("--soak-max-growth-mib must be >= 0");
  const int64_t samples = 10;

  OpenAiServer server(
      *s.model, *s.tokenizer,
      // Room for the abandoned requests the server has not noticed yet.
      server_options(flags.integer("max-batch"), 4 * static_cast<int>(concurrency)));
  LoadOptions o;
  o.port = server.start();
  o.requests = total;
  o.concurrency = static_cast<int>(concurrency);
  o.max_tokens = s.max_tokens;
  o.kind_of = soak_kind;
  std::mutex mutex;
  std::vector<std::pair<int64_t, int64_t>> curve = {{0, resident_bytes()}};  // (done, bytes)
  o.on_done = [&](int64_t done) {
    if (done % (total / samples) != 0 && done != total) return;
    std::lock_guard<std::mutex> lock(mutex);
    curve.emplace_back(done, resident_bytes());
  };
  std::printf(
      "bench serve --soak: %lld requests at concurrency %lld (%s, max_tokens %lld): 60%% "
      "chat, 10%% malformed JSON, 10%% invalid field, 10%% closed before the answer, 10%% "
      "closed after its first bytes\n",
      static_cast<long long>(total), static_cast<long long>(concurrency),
      flags.str("model").c_str(), static_cast<long long>(s.max_tokens));
  const LoadResult r = run_load(o);
  server.stop();
  const ServerStats st = server.stats();
  std::sort(curve.begin(), curve.end());

  Table table({"requests done", "RSS MiB"});
  for (const auto& [done, bytes] : curve)
    table.add({std::to_string(done), fixed(static_cast<double>(bytes) / (1 << 20), 1)});
  table.print();
  // The RSS at the sample nearest the half, and at the end.
  auto half = std::min_element(curve.begin(), curve.end(), [&](const auto& a, const auto& b) {
    return std::abs(a.first - total / 2) < std::abs(b.first - total / 2);
  });
  const double growth_mib = static_cast<double>(curve.back().second - half->second) / (1 << 20);
  std::printf(
      "%.1f s, %.1f requests/s; %lld answered 200, %lld abandoned by their client (noticed by "
      "the server), %lld errors\nRSS growth over the second half: %.2f MiB (bound %.2f MiB)\n",
      r.wall_s, static_cast<double>(total) / r.wall_s, static_cast<long long>(st.requests),
      static_cast<long long>(st.abandoned), static_cast<long long>(r.errors), growth_mib,
      bound_mib);
  if (!r.first_error.empty()) std::fprintf(stderr, "first error: %s\n", r.first_error.c_str());
  if (!flags.str("json").empty()) {
    std::vector<JsonObject> points;
    for (const auto& [done, bytes] : curve) {
      JsonObject p;
      p.integer("requests", done).integer("rss_bytes", bytes);
      points.push_back(p);
    }
    JsonObject json;
    json.str("bench", "serve_soak")
        .str("model", flags.str("model"))
        .integer("requests", total)
        .integer("concurrency", concurrency)
        .integer("errors", r.errors)
        .integer("answered", st.requests)
        .integer("abandoned", st.abandoned)
        .num("seconds", r.wall_s)
        .num("rss_growth_second_half_mib", growth_mib)
        .array("rss", points);
    write_json_file(flags.str("json"), json);
  }
  if (growth_mib > bound_mib) {
    std::fprintf(stderr,
                 "bench serve --soak: resident memory grew %.2f MiB over the second half, more "
                 "than --soak-max-growth-mib %.2f\n",
                 growth_mib, bound_mib);
    return 1;
  }
  return r.errors == 0 ? 0 : 1;
}

}  // namespace

int bench_serve_main(const std::vector<std::string>& args) {
  Flags flags("bench serve",
              "Load `rlaif serve`'s server, started in-process on a free loopback port, with\n"
              "greedy chat completions from client threads: --requests of them at each\n"
              "--concurrency, first with --max-batch, then unbatched (max batch 1). Prints\n"
              "requests/s, completion tokens/s, p50/p99 latency and errors (answers other than\n"
              "200) for each, and the batched/unbatched throughput ratio. Exits 1 on errors.\n"
              "--stream sends them streamed and also reports the time until each stream's first\n"
              "text (p50/p99).\n"
              "--soak N instead sends N requests (10% malformed JSON, 10% an invalid field,\n"
              "10% closed before the answer, 10% closed after its first bytes), prints the\n"
              "process's resident memory (VmRSS) every N/10 requests, and exits 1 when it grew\n"
              "more than --soak-max-growth-mib over the second half, or on unexpected answers.");
  flags.option("model", "data/models/stories260K", "model directory to serve")
      .option("requests", "64", "requests per concurrency and configuration")
      .option("concurrency", "1,8,64", "comma-separated numbers of clients sending at once")
      .option("max-tokens", "32", "max_tokens of every request")
      .option("max-batch", "16", "the batched configuration's --max-batch")
      .flag("stream", "stream the requests, and time each until its first text")
      .flag("mixed-lengths",
            "spread the requests' max_tokens evenly over 1..--max-tokens (short and long "
            "answers mixed)")
      .option("soak", "0", "send this many mixed requests and track memory instead (0 = off)")
      .option("soak-concurrency", "16", "clients sending at once during --soak")
      .option("soak-max-growth-mib", "16",
              "--soak fails when RSS grew more than this over its second half")
      .option("json", "", "also write the figures to this JSON file");
  if (!flags.parse(args)) return 0;
  Setup s;
  s.max_tokens = flags.integer("max-tokens");
  if (s.max_tokens < 1) throw UsageError("--max-tokens must be >= 1");
  positive_int_list("concurrency", flags.str("concurrency"),
                    4096);  // usage errors before the model loads
  const Transformer model = load_model(flags.str("model"));
  const Tokenizer tokenizer = Tokenizer::load_dir(flags.str("model"));
  s.model = &model;
  s.tokenizer = &tokenizer;
  return flags.integer("soak") != 0 ? bench_soak(flags, s) : bench_load(flags, s);
}

}  // namespace rlaif::cli
