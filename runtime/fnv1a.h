// FNV-1a, 64-bit (Fowler, Noll and Vo; IETF draft-eastlake-fnv): a cheap, stable,
// non-cryptographic hash of bytes, the same on every machine and run. From the offset basis,
// each byte b does
//   h ← (h XOR b) · p   (mod 2^64)
// with offset basis 14695981039346656037 (0xcbf29ce484222325) and prime p = 1099511628211
// (0x100000001b3). Known answers (the reference implementation's test vectors):
//   ""       → 0xcbf29ce484222325 (the offset basis itself)
//   "a"      → 0xaf63dc4c8601ec8c
//   "foobar" → 0x85944171f73967e8
//
// A hash may start from another value than the offset basis (a seed): each starting value gives
// another, equally well-mixed hash of the same bytes. Only the offset basis gives FNV-1a itself.
//
// add_word mixes a whole 64-bit word in one step (the same update with w in place of b): fewer
// multiplies for large inputs such as model weights. It is not FNV-1a of the word's 8 bytes, so a
// hash keeps to one way of feeding each field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rlaif {

class Fnv1a64 {
 public:
  static constexpr uint64_t offset_basis = 14695981039346656037ull;
  static constexpr uint64_t prime = 1099511628211ull;

  constexpr Fnv1a64() = default;
  // Starts from `seed` instead of the offset basis (see above).
  explicit constexpr Fnv1a64(uint64_t seed) : h_(seed) {}

  constexpr void add_byte(unsigned char b) { h_ = (h_ ^ b) * prime; }
  void add_bytes(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) add_byte(p[i]);
  }
  constexpr void add(std::string_view text) {
    for (char c : text) add_byte(static_cast<unsigned char>(c));
  }
  constexpr void add_word(uint64_t w) { h_ = (h_ ^ w) * prime; }
  constexpr uint64_t value() const { return h_; }

 private:
  uint64_t h_ = offset_basis;
};

// FNV-1a of `text`'s bytes.
constexpr uint64_t fnv1a64(std::string_view text) {
  Fnv1a64 h;
  h.add(text);
  return h.value();
}

}  // namespace rlaif
