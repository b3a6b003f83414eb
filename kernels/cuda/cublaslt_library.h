// cuBLASLt, opened on first use. Linking it would run its start-up code in every process of this
// binary, about 0.4 s of page faults on a 2-core machine, before main(): every command and every
// test would pay for it, GPU or not. The backend instead opens the library (dlopen) the first
// time a GPU matrix product needs it and calls it through this table of its functions.
#pragma once

#include <cublasLt.h>

namespace rlaif::cuda {

// The cuBLASLt functions the CUDA backend calls, named without their cublasLt prefix.
struct CublasLtFunctions {
  decltype(&::cublasLtGetVersion) GetVersion;
  decltype(&::cublasLtGetStatusName) GetStatusName;
  decltype(&::cublasLtGetStatusString) GetStatusString;
  decltype(&::cublasLtCreate) Create;
  decltype(&::cublasLtDestroy) Destroy;
  decltype(&::cublasLtMatmul) Matmul;
  decltype(&::cublasLtMatmulAlgoGetHeuristic) MatmulAlgoGetHeuristic;
  decltype(&::cublasLtMatmulDescCreate) MatmulDescCreate;
  decltype(&::cublasLtMatmulDescDestroy) MatmulDescDestroy;
  decltype(&::cublasLtMatmulDescSetAttribute) MatmulDescSetAttribute;
  decltype(&::cublasLtMatmulPreferenceCreate) MatmulPreferenceCreate;
  decltype(&::cublasLtMatmulPreferenceDestroy) MatmulPreferenceDestroy;
  decltype(&::cublasLtMatmulPreferenceSetAttribute) MatmulPreferenceSetAttribute;
  decltype(&::cublasLtMatrixLayoutCreate) MatrixLayoutCreate;
  decltype(&::cublasLtMatrixLayoutDestroy) MatrixLayoutDestroy;
  decltype(&::cublasLtMatrixLayoutSetAttribute) MatrixLayoutSetAttribute;
};

// Opens libcublasLt.so.<the major version compiled against> (through the binary's run path, then
// the CUDA Toolkit's library directory it was built with) once, thread-safely, and resolves every
// function. Error naming the library or the missing function.
const CublasLtFunctions& cublaslt();

}  // namespace rlaif::cuda
