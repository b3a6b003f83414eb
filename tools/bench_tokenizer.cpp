// `rlaif bench tokenizer`: encoding speed of a tokenizer (MB of UTF-8 text per second) on English
// prose and on mixed-script text, on one thread and on all threads at once. The text is cut into
// documents of about 4 KB, as a data pipeline feeds them.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "io/hf_text.h"
#include "io/tokenizer.h"
#include "runtime/error.h"
#include "tools/bench_common.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"

namespace rlaif::cli {
namespace {

std::vector<std::string> documents_of(const std::string& text, size_t bytes_each) {
  std::vector<std::string> docs;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = std::min(text.size(), pos + bytes_each);
    while (end < text.size() && text[end] != '\n') ++end;  // whole lines
    docs.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return docs;
}

// Words of random characters from several scripts (Latin, Cyrillic, Greek, Arabic, Devanagari,
// CJK, Hangul, emoji) with digits and punctuation: text whose words rarely repeat.
std::string mixed_script_text(size_t bytes, uint64_t seed) {
  struct Range {
    char32_t first, last;
  };
  const Range scripts[] = {{'a', 'z'},     {0x430, 0x44F},   {0x3B1, 0x3C9},   {0x627, 0x64A},
                           {0x915, 0x939}, {0x4E00, 0x62FF}, {0xAC00, 0xB7A3}, {0x1F600, 0x1F64F}};
  std::mt19937_64 rng(seed);
  std::string out;
  while (out.size() < bytes) {
    const Range& r = scripts[rng() % std::size(scripts)];
    const int length = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < length; ++i) {
      hf::utf8_append(out, r.first + static_cast<char32_t>(rng() % (r.last - r.first + 1)));
    }
    const uint64_t sep = rng() % 20;
    out += sep == 0 ? ", " : sep == 1 ? ". " : sep == 2 ? "\n" : sep == 3 ? " 2024 " : " ";
  }
  return out;
}

// Seconds to encode every document once on each of `threads` threads (documents dealt out in
// turn), after one untimed pass.
double time_encode(const Tokenizer& tok, const std::vector<std::string>& docs, int threads) {
  auto pass = [&] {
    std::atomic<size_t> next{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        for (size_t i = next++; i < docs.size() * static_cast<size_t>(threads); i = next++) {
          tok.encode(docs[i % docs.size()]);
        }
      });
    }
    for (auto& w : workers) w.join();
  };
  pass();
  const auto t0 = std::chrono::steady_clock::now();
  pass();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int bench_tokenizer_main(const std::vector<std::string>& args) {
  Flags flags("bench tokenizer",
              "Time Tokenizer::encode (no special tokens) on English text (--text) and on\n"
              "generated mixed-script text of the same size, in documents of about 4 KB. Prints\n"
              "MB/s (10^6 bytes of UTF-8 input per second) on 1 thread and on --threads threads\n"
              "encoding different documents at once, and tokens per byte.");
  flags.option("tokenizer", "data/tokenizers/llama3_1", "model directory or tokenizer file")
      .option("text", "data/text/tinyshakespeare.txt", "English text file")
      .option("threads", "0", "threads for the parallel figure (0 = all cores)");
  if (!flags.parse(args)) return 0;
  int threads = static_cast<int>(flags.integer("threads"));
  if (threads < 0) throw UsageError("--threads must be 0 or positive");
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  const Tokenizer tok = Tokenizer::load(flags.str("tokenizer"));
  std::ifstream in(flags.str("text"), std::ios::binary);
  RLAIF_CHECK(in.good(), "bench tokenizer: cannot read --text '", flags.str("text"), "'");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string english = ss.str();
  const std::string mixed = mixed_script_text(english.size(), 0);

  std::printf("bench tokenizer: %s (%s), %d threads\n", tok.path().c_str(), tok.format(), threads);
  Table table({"text", "MB", "tokens/byte", "MB/s 1 thread", "MB/s all threads"});
  for (const auto& [name, text] : {std::pair{"english", &english}, std::pair{"mixed", &mixed}}) {
    const std::vector<std::string> docs = documents_of(*text, 4096);
    const double mb = static_cast<double>(text->size()) / 1e6;
    const double tokens = static_cast<double>(tok.encode(*text).size());
    const double one = mb / time_encode(tok, docs, 1);
    const double all = mb * threads / time_encode(tok, docs, threads);
    table.add({name, fixed(mb, 2), fixed(tokens / static_cast<double>(text->size()), 3),
               fixed(one, 1), fixed(all, 1)});
  }
  table.print();
  return 0;
}

}  // namespace rlaif::cli
