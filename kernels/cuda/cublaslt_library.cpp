#include "kernels/cuda/cublaslt_library.h"

#include <dlfcn.h>

#include <string>

#include "runtime/error.h"

namespace rlaif::cuda {
namespace {

void* open_library() {
  const std::string name = "libcublasLt.so." + std::to_string(CUBLAS_VER_MAJOR);
  void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  std::string why = handle == nullptr ? std::string(dlerror()) : "";
#ifdef RLAIF_CUDA_LIBRARY_DIR
  if (handle == nullptr) {
    const std::string path = std::string(RLAIF_CUDA_LIBRARY_DIR) + "/" + name;
    handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) why += "; " + std::string(dlerror());
  }
#endif
  RLAIF_CHECK(handle != nullptr, "cannot open cuBLASLt (", name,
              "), which GPU matrix products need: ", why,
              ". Install the CUDA Toolkit's cuBLAS or add its lib directory to LD_LIBRARY_PATH");
  return handle;
}

template <typename F>
void resolve(void* library, F& function, const char* name) {
  function = reinterpret_cast<F>(dlsym(library, name));
  RLAIF_CHECK(function != nullptr, "cuBLASLt lacks ", name, ": ", dlerror());
}

CublasLtFunctions load() {
  void* library = open_library();  // kept open for the life of the process
  CublasLtFunctions f{};
  resolve(library, f.GetVersion, "cublasLtGetVersion");
  resolve(library, f.GetStatusName, "cublasLtGetStatusName");
  resolve(library, f.GetStatusString, "cublasLtGetStatusString");
  resolve(library, f.Create, "cublasLtCreate");
  resolve(library, f.Destroy, "cublasLtDestroy");
  resolve(library, f.Matmul, "cublasLtMatmul");
  resolve(library, f.MatmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic");
  resolve(library, f.MatmulDescCreate, "cublasLtMatmulDescCreate");
  resolve(library, f.MatmulDescDestroy, "cublasLtMatmulDescDestroy");
  resolve(library, f.MatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute");
  resolve(library, f.MatmulPreferenceCreate, "cublasLtMatmulPreferenceCreate");
  resolve(library, f.MatmulPreferenceDestroy, "cublasLtMatmulPreferenceDestroy");
  resolve(library, f.MatmulPreferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute");
  resolve(library, f.MatrixLayoutCreate, "cublasLtMatrixLayoutCreate");
  resolve(library, f.MatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy");
  resolve(library, f.MatrixLayoutSetAttribute, "cublasLtMatrixLayoutSetAttribute");
  return f;
}

}  // namespace

const CublasLtFunctions& cublaslt() {
  static const CublasLtFunctions functions = load();
  return functions;
}

size_t cublaslt_version() {
  return cublaslt().GetVersion();
}

}  // namespace rlaif::cuda
