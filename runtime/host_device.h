// RLAIF_HD marks small functions that both the host compiler and nvcc compile, so the CUDA
// backend computes exactly what the CPU reference computes (RNG streams, dtype rounding).
#pragma once

#if defined(__CUDACC__)
#define RLAIF_HD __host__ __device__ __forceinline__
#else
#define RLAIF_HD inline
#endif
