#include "kernels/cpu/cpu_info.h"

#include <cblas.h>
#include <omp.h>

namespace rlaif::cpu {

std::string blas_core_name() {
  const char* name = openblas_get_corename();
  return name ? name : "unknown";
}

int thread_count() {
  return omp_get_max_threads();
}

bool cpu_has_avx2_fma() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

}  // namespace rlaif::cpu
