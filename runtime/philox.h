// Philox4x32-10, the counter-based generator of Salmon et al., "Parallel Random Numbers: As Easy
// as 1, 2, 3" (SC'11), and the streams rlaif defines on it.
//
// A stream is fixed by (seed, offset): element i of a fill is a pure function of
// (seed, offset + i), so any backend, any thread layout and any resume point reproduce the same
// numbers. Definitions (the CUDA backend must follow them exactly):
//   key      = (seed & 0xffffffff, seed >> 32)
//   g        = offset + i;  block = g / 4;  lane = g % 4
//   words    = philox4x32_10(counter = (block & 0xffffffff, block >> 32, 0, 0), key)
//   uniform  = (words[lane] >> 8) · 2^-24                  in [0, 1), exact in f32
//   normal   = Box–Muller on the block's lane pair p = lane / 2, computed in double:
//              u1 = ((words[2p] >> 8) + 1) · 2^-24 ∈ (0, 1],  u2 = (words[2p+1] >> 8) · 2^-24
//              r = sqrt(-2 ln u1);  lane even → r·cos(2π u2), odd → r·sin(2π u2)
// Double precision makes the rounded f32 result agree across libm implementations.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

#include "runtime/host_device.h"

namespace rlaif {

struct PhiloxWords {
  uint32_t w[4];
};

RLAIF_HD PhiloxWords philox4x32_10(PhiloxWords ctr, uint32_t key0, uint32_t key1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(kMul0) * ctr.w[0];
    uint64_t p1 = static_cast<uint64_t>(kMul1) * ctr.w[2];
    PhiloxWords next;
    next.w[0] = static_cast<uint32_t>(p1 >> 32) ^ ctr.w[1] ^ key0;
    next.w[1] = static_cast<uint32_t>(p1);
    next.w[2] = static_cast<uint32_t>(p0 >> 32) ^ ctr.w[3] ^ key1;
    next.w[3] = static_cast<uint32_t>(p0);
    ctr = next;
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return ctr;
}

RLAIF_HD PhiloxWords philox_block(uint64_t seed, uint64_t block) {
  PhiloxWords ctr{{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u}};
  return philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Element g = offset + i of the uniform [0, 1) stream of `seed`.
RLAIF_HD float philox_uniform(uint64_t seed, uint64_t g) {
  PhiloxWords words = philox_block(seed, g / 4);
  return static_cast<float>(words.w[g % 4] >> 8) * (1.0f / 16777216.0f);
}

// Element g of the standard normal stream of `seed`.
RLAIF_HD float philox_normal(uint64_t seed, uint64_t g) {
  PhiloxWords words = philox_block(seed, g / 4);
  unsigned lane = static_cast<unsigned>(g % 4);
  unsigned pair = lane / 2;
  double u1 = static_cast<double>((words.w[2 * pair] >> 8) + 1u) * (1.0 / 16777216.0);
  double u2 = static_cast<double>(words.w[2 * pair + 1] >> 8) * (1.0 / 16777216.0);
  double r = std::sqrt(-2.0 * std::log(u1));
  double angle = 6.283185307179586476925286766559 * u2;
  return static_cast<float>((lane % 2 == 0) ? r * std::cos(angle) : r * std::sin(angle));
}

}  // namespace rlaif
