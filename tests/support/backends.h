// Backend handles for tests: the CPU reference backend, the one every other backend is checked
// against.
#pragma once

#include "kernels/backend.h"

namespace rlaif::test {

inline Backend& cpu() {
  return backend_for(Device::cpu());
}

}  // namespace rlaif::test
