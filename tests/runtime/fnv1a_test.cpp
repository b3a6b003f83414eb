// FNV-1a 64 against the reference implementation's test vectors (Fowler, Noll and Vo's
// test_fnv.c, FNV1A_64 column), and the word-at-a-time update worked by hand.
#include "runtime/fnv1a.h"

#include <gtest/gtest.h>

#include <string>

namespace rlaif {
namespace {

TEST(Fnv1a64, StandardTestVectors) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);  // the offset basis
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("b"), 0xaf63df4c8601f1a5ull);
  EXPECT_EQ(fnv1a64("c"), 0xaf63de4c8601eff2ull);
  EXPECT_EQ(fnv1a64("foo"), 0xdcb27518fed9d577ull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
  EXPECT_EQ(fnv1a64("chongo was here!\n"), 0x46810940eff5f915ull);
}

TEST(Fnv1a64, ConstantsAreTheStandardOnes) {
  EXPECT_EQ(Fnv1a64::offset_basis, 14695981039346656037ull);
  EXPECT_EQ(Fnv1a64::prime, 1099511628211ull);
  static_assert(fnv1a64("a") == 0xaf63dc4c8601ec8cull, "usable at compile time");
}

TEST(Fnv1a64, PiecesHashAsTheirConcatenation) {
  Fnv1a64 h;
  h.add("foo");
  const std::string bar = "bar";
  h.add_bytes(bar.data(), bar.size());
  EXPECT_EQ(h.value(), fnv1a64("foobar"));
}

TEST(Fnv1a64, ASeedReplacesTheOffsetBasis) {
  // From seed 0, "a" = 0x61 gives (0 XOR 0x61) · p = 0x61 · 2^40 + 0x61 · 0x1b3
  // = 0x610000000000 + 0xa4d3 (97 · 435 = 42195).
  Fnv1a64 zero(0);
  zero.add("a");
  EXPECT_EQ(zero.value(), 0x61000000a4d3ull);
  Fnv1a64 basis(Fnv1a64::offset_basis);
  basis.add("foobar");
  EXPECT_EQ(basis.value(), fnv1a64("foobar"));
}

TEST(Fnv1a64, AddWordIsOneUpdateOfTheWholeWord) {
  // A word below 256 is the same update as that byte: 'a' = 0x61.
  Fnv1a64 word;
  word.add_word(0x61);
  EXPECT_EQ(word.value(), fnv1a64("a"));
  // (basis XOR 2^32) · p mod 2^64, by hand: basis = 0xcbf29ce484222325, XOR 0x100000000 gives
  // 0xcbf29ce584222325; times p = 2^40 + 0x1b3 mod 2^64.
  const uint64_t x = 0xcbf29ce584222325ull;
  Fnv1a64 big;
  big.add_word(uint64_t{1} << 32);
  EXPECT_EQ(big.value(), (x << 40) + x * 0x1b3ull);
}

}  // namespace
}  // namespace rlaif
