// The reference log-probs of algorithms/reference_logprobs.h: the values (batching changes
// nothing; the average is the sum over the answer's tokens), the cache file and its key (reused
// only for the same reference, pairs and format), and the content hashes that key it.
#include "algorithms/reference_logprobs.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"
#include "runtime/fnv1a.h"
#include "tests/algorithms/preference_test_util.h"

namespace rlaif {
namespace {

using namespace rlaif::testing;
namespace fs = std::filesystem;

TEST(Dpo, ReferenceCacheIsReusedOnlyForTheSameReferenceAndPairs) {
  const std::string dir = temp_dir("cache_key");
  const std::string path = dir + "/ref_logprobs.safetensors";
  const Transformer a = tiny_model(5, 1.0f), b = tiny_model(6, 1.0f);
  std::vector<TokenizedPair> pairs = preference_tiny_pairs();
  bool reused = true;
  auto first = cached_ref_logprobs(path, a, pairs, {}, 2, &reused);
  EXPECT_FALSE(reused);
  ASSERT_TRUE(fs::exists(path));
  auto again = cached_ref_logprobs(path, a, pairs, {}, 2, &reused);
  EXPECT_TRUE(reused);
  EXPECT_EQ(again.first.chosen_sum, first.first.chosen_sum);
  EXPECT_EQ(again.first.rejected_avg, first.first.rejected_avg);
  EXPECT_EQ(again.second.size(), 0u);
  // Batching does not change the values (padding is inert).
  RefLogprobs one_by_one = compute_ref_logprobs(a, pairs, 1);
  for (size_t i = 0; i < pairs.size(); ++i) {
    EXPECT_NEAR(one_by_one.chosen_sum[i], first.first.chosen_sum[i], 1e-5);
    EXPECT_NEAR(one_by_one.rejected_avg[i], first.first.rejected_avg[i], 1e-6);
    // The average is the sum over the answer's tokens divided by their number.
    EXPECT_NEAR(first.first.chosen_avg[i] * static_cast<float>(pairs[i].chosen.completion.size()),
                first.first.chosen_sum[i], 1e-4);
  }
  cached_ref_logprobs(path, b, pairs, {}, 2, &reused);  // another reference
  EXPECT_FALSE(reused);
  pairs[0].rejected.completion[0] = 5;  // other data
  cached_ref_logprobs(path, b, pairs, {}, 2, &reused);
  EXPECT_FALSE(reused);
  cached_ref_logprobs(path, b, pairs, {pairs[1]}, 2, &reused);  // a held-out set now
  EXPECT_FALSE(reused);
  auto with_val = cached_ref_logprobs(path, b, pairs, {pairs[1]}, 2, &reused);
  EXPECT_TRUE(reused);
  EXPECT_EQ(with_val.second.size(), 1u);
  fs::remove_all(dir);
}

TEST(Dpo, ModelHashCoversBf16Weights) {
  // A reference on the GPU may hold bf16 weights: they are hashed as bytes, not read as floats.
  Transformer model(preference_tiny_config(), Device::cpu(), DType::bf16);
  for (auto& [name, p] : model.parameters()) {
    std::memset(p.data().raw_data(), 0x3c, p.data().nbytes());
  }
  const uint64_t hash = model_hash(model);
  EXPECT_EQ(model_hash(model), hash);
  const Tensor last = model.parameters().back().second.data();
  static_cast<uint8_t*>(last.raw_data())[last.nbytes() - 1] ^= 1;
  EXPECT_NE(model_hash(model), hash) << "a changed bf16 weight left the hash unchanged";
}

// A cache file of another format (its key's hashes made another way) is recomputed, saying so,
// and rewritten in the current format; it is never read as if it matched.
TEST(ReferenceLogprobs, ACacheOfAnotherFormatIsRecomputedAndSaysSo) {
  const std::string dir = temp_dir("old_format");
  const std::string path = dir + "/ref_logprobs.safetensors";
  const Transformer a = tiny_model(5);
  const std::vector<TokenizedPair> pairs = preference_tiny_pairs();
  const auto want = compute_ref_logprobs(a, pairs, 2);
  // A file keyed as the current one is, but for its format, holding every value off by one.
  NamedTensors old;
  for (auto [name, column] :
       {std::pair{"chosen_sum", &want.chosen_sum}, std::pair{"rejected_sum", &want.rejected_sum},
        std::pair{"chosen_avg", &want.chosen_avg}, std::pair{"rejected_avg", &want.rejected_avg}}) {
    std::vector<float> wrong = *column;
    for (float& v : wrong) v += 1.0f;
    old.emplace_back(std::string("train.") + name,
                     Tensor::from_vector(wrong, {static_cast<int64_t>(wrong.size())}));
  }
  char hex[20];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(model_hash(a)));
  std::map<std::string, std::string> key = {{"format", "rlaif-ref-logprobs-1"}, {"reference", hex}};
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(pairs_hash(pairs)));
  key["train_pairs"] = hex;
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(pairs_hash(std::vector<TokenizedPair>{})));
  key["val_pairs"] = hex;
  fs::create_directories(dir);
  write_safetensors(path, old, key);

  bool reused = true;
  ::testing::internal::CaptureStderr();
  const auto got = cached_ref_logprobs(path, a, pairs, {}, 2, &reused);
  const std::string said = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(reused);
  EXPECT_EQ(got.first.chosen_sum, want.chosen_sum);
  EXPECT_EQ(got.first.rejected_avg, want.rejected_avg);
  EXPECT_NE(said.find("format rlaif-ref-logprobs-1"), std::string::npos) << said;
  EXPECT_NE(said.find("recomputing"), std::string::npos) << said;
  EXPECT_EQ(SafetensorsFile::open(path).metadata().at("format"), "rlaif-ref-logprobs-2");
  cached_ref_logprobs(path, a, pairs, {}, 2, &reused);  // the rewritten file is reused
  EXPECT_TRUE(reused);
  fs::remove_all(dir);
}

// The hashes are FNV-1a 64 with the standard offset basis, fed 64-bit words: the empty pair list
// hashes its length word 0 alone, (basis XOR 0) · prime = basis · prime mod 2^64.
TEST(ReferenceLogprobs, PairsHashStartsFromTheStandardOffsetBasis) {
  EXPECT_EQ(pairs_hash({}), Fnv1a64::offset_basis * Fnv1a64::prime);
  EXPECT_EQ(pairs_hash({}), 0xcbf29ce484222325ull * 0x100000001b3ull);
}

}  // namespace
}  // namespace rlaif
