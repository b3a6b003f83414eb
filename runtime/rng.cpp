#include "runtime/rng.h"

#include "runtime/error.h"
#include "runtime/philox.h"

namespace rlaif {

float Generator::uniform() {
  return philox_uniform(seed_, take(1));
}

float Generator::normal() {
  return philox_normal(seed_, take(1));
}

uint64_t Generator::below(uint64_t n) {
  RLAIF_CHECK(n > 0, "Generator::below: n must be positive");
  // Two 32-bit words give a 64-bit draw; the modulo bias is at most n / 2^64.
  PhiloxWords w = philox_block(seed_, take(4) / 4);
  uint64_t draw = (static_cast<uint64_t>(w.w[0]) << 32) | w.w[1];
  return draw % n;
}

}  // namespace rlaif
