// The run's random state: a seed and an offset into its Philox streams (see philox.h).
//
// Every consumer of randomness (initialisation, shuffling, dropout, sampling) takes a slice of
// the stream with take(n) and fills with (seed, offset). Saving (seed, offset) in a checkpoint is
// all it takes to resume the exact same random numbers.
#pragma once

#include <cstdint>

namespace rlaif {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0, uint64_t offset = 0) : seed_(seed), offset_(offset) {}

  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }

  // Reserves n stream elements and returns the offset of the first. The offset advances to the
  // next multiple of 4 so that every fill starts on a Philox block boundary.
  uint64_t take(uint64_t n) {
    uint64_t start = offset_;
    offset_ += (n + 3) / 4 * 4;
    return start;
  }

  // One uniform [0, 1) float / one standard normal, consuming a block each; for host-side
  // decisions such as shuffling and sampling.
  float uniform();
  float normal();
  // Integer in [0, n), n > 0, from 64 random bits (modulo bias at most n / 2^64).
  uint64_t below(uint64_t n);

 private:
  uint64_t seed_;
  uint64_t offset_;
};

}  // namespace rlaif
