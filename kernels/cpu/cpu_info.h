// What the CPU backend runs on: the OpenBLAS kernel family in use and the thread count, for
// `rlaif version`, benchmarks and the start-up tuning in tools/main.cpp.
#pragma once

#include <string>

namespace rlaif::cpu {

// OpenBLAS's name for the kernels it selected ("Haswell", "SkylakeX", "Prescott", ...).
std::string blas_core_name();
// Threads the CPU backend uses (OpenMP's maximum).
int thread_count();
// Whether the processor runs AVX2 and FMA (the Haswell kernels' requirements).
bool cpu_has_avx2_fma();

}  // namespace rlaif::cpu
