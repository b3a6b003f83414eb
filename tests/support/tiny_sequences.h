// Token sequences for the tiny models of tests/support/tiny_models.h.
#pragma once

#include <vector>

#include "algorithms/sequences.h"

namespace rlaif::test {

// A batch of two prompt + response sequences for the tiny models (vocab ≥ 23, context ≥ 9).
inline SequenceBatch tiny_sequences() {
  std::vector<TokenizedExample> ex = {{{1, 5, 7}, {9, 4, 2, 11}}, {{1, 3}, {6, 8, 2}}};
  return make_batch(ex, Device::cpu());
}

}  // namespace rlaif::test
