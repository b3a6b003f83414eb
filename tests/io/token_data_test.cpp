// The token cache beside a text file (io/token_data.h): written once, read back, and cleaned of
// what killed writers left, whatever cache key they were writing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "io/token_data.h"
#include "io/tokenizer.h"
#include "tests/support/dead_pid.h"
#include "tests/support/source_dir.h"
#include "tests/support/temp_dir.h"

namespace rlaif {
namespace {
namespace fs = std::filesystem;

TEST(TokenCache, KilledWritersTemporariesOfEveryKeyGoLiveOnesStay) {
  const fs::path dir = test::temp_dir("token_cache");
  fs::create_directories(dir);
  const fs::path text = dir / "corpus.txt";
  std::ofstream(text) << "Once upon a time there was a little girl.\n";
  const std::string dead = std::to_string(test::dead_pid());
  // A killed writer of an older key (the text has changed since), one of a live process, a file
  // of another text, and a name of the right family but not a cache's shape.
  const fs::path stale = dir / ("corpus.txt.tokens-0123456789abcdef.bin.tmp." + dead);
  const fs::path live =
      dir / ("corpus.txt.tokens-0123456789abcdef.bin.tmp." + std::to_string(::getppid()));
  const fs::path other_text = dir / ("notes.txt.tokens-0123456789abcdef.bin.tmp." + dead);
  const fs::path not_a_cache = dir / ("corpus.txt.tokens-x.bin.tmp." + dead);
  for (const fs::path& p : {stale, live, other_text, not_a_cache}) std::ofstream(p) << "partial";

  Tokenizer tok = Tokenizer::load(test::source_dir() + "/data/models/stories260K/tokenizer.model");
  const std::vector<int32_t> first = load_tokens_cached(text.string(), tok);
  ASSERT_FALSE(first.empty());
  EXPECT_FALSE(fs::exists(stale)) << "a killed writer's temporary stayed";
  EXPECT_TRUE(fs::exists(live)) << "a live writer's temporary was removed";
  EXPECT_TRUE(fs::exists(other_text)) << "another text's temporary was removed";
  EXPECT_TRUE(fs::exists(not_a_cache)) << "a file not of the cache's shape was removed";

  int caches = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("corpus.txt.tokens-", 0) == 0 && name.size() >= 4 &&
        name.compare(name.size() - 4, 4, ".bin") == 0) {
      ++caches;
      EXPECT_EQ(read_token_shard(e.path().string()), first) << name;
    }
  }
  EXPECT_EQ(caches, 1) << "one cache file, holding the tokens";
  EXPECT_EQ(load_tokens_cached(text.string(), tok), first);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rlaif
