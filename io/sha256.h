// SHA-256 (FIPS 180-4), for content keys such as the LLM client's request-cache key. Written
// here rather than pulled from OpenSSL so io/ links no crypto library for a hash of a few KB.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace rlaif {

class Sha256 {
 public:
  Sha256();
  void update(std::string_view bytes);
  // The 32-byte digest; the object must not be updated afterwards.
  std::array<uint8_t, 32> finish();

 private:
  void compress(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// Lowercase hex digest of `bytes` (64 characters).
std::string sha256_hex(std::string_view bytes);

}  // namespace rlaif
