// `rlaif version`: the version, the build type, and which backends and libraries are compiled in
// (the registered device types; for CUDA, also what the runtime sees on this machine).
// `--primitives`: the backend interface a port implements, counted (kernels/backend.h).
#include <cstdio>
#include <string>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_info.h"
#include "kernels/device_registry.h"
#include "runtime/build_info.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"

#ifdef RLAIF_HAVE_CUDA
#include "kernels/cuda/cuda_info.h"
#endif

namespace rlaif::cli {

namespace {

// The porter's checklist: every primitive of RLAIF_BACKEND_PRIMITIVES, required ones first.
void print_primitives() {
  std::printf("%d required primitives (a backend defines each), plus device() and name():\n",
              kRequiredPrimitives);
  for (const BackendPrimitive& p : kBackendPrimitives) {
    if (!p.optional) std::printf("  %s\n", p.name);
  }
  std::printf(
      "%d optional primitives (kernels/backend.cpp composes each from required ones; override "
      "where the device does better), plus synchronize() and mark():\n",
      kOptionalPrimitives);
  for (const BackendPrimitive& p : kBackendPrimitives) {
    if (p.optional) std::printf("  %s\n", p.name);
  }
  std::printf(
      "Each one's contract is its comment in kernels/backend.h; docs/PORTING.md says the "
      "rest of a port.\n");
}

}  // namespace

int version_main(const std::vector<std::string>& args) {
  Flags flags("version", "Print the version, the build type and what this binary was built with.");
  flags.flag("primitives",
             "print the backend primitives a port implements, counted, and nothing else");
  if (!flags.parse(args)) return 0;
  if (flags.on("primitives")) {
    print_primitives();
    return 0;
  }
  namespace bi = build_info;
  std::printf("rlaif %s\n", bi::kVersion);
  std::printf("build type: %s (%s)%s\n", bi::kBuildType, bi::kCompiler,
              bi::kSanitizers ? ", AddressSanitizer + UBSan" : "");
  std::printf("OpenBLAS: %s (kernels %s), CPU threads: %d\n", bi::kOpenBlas ? "yes" : "no",
              cpu::blas_core_name().c_str(), cpu::thread_count());
  std::printf("MPI: %s\n", bi::kMpi ? "yes (runtime/communicator.h; launch with mpirun)" : "no");
  // The registered device types (kernels/device_registry.h), each with the float dtypes its
  // backend accepts: "backends: cpu (f32), cuda (f32, bf16)".
  std::string backends;
  for (const DeviceTypeRegistration& type : registered_device_types()) {
    if (!backends.empty()) backends += ", ";
    backends += std::string(device_type_name(type.type)) + " (";
    for (size_t i = 0; i < type.float_dtypes.size(); ++i) {
      backends += (i ? ", " : "") + std::string(dtype_name(type.float_dtypes[i]));
    }
    backends += ")";
  }
  std::printf("backends: %s\n", backends.c_str());
  if (!bi::kCuda) {
    std::printf("CUDA: no (built without the CUDA Toolkit)\nNCCL: no\n");
    return 0;
  }
#ifdef RLAIF_HAVE_CUDA
  cuda::CudaInfo info = cuda::query_cuda();
  std::printf("CUDA: yes (runtime %d.%d, architectures %s)\n", info.runtime_version / 1000,
              (info.runtime_version % 1000) / 10, bi::kCudaArchitectures);
  if (bi::kNccl) {
    std::printf("NCCL: yes (%d.%d.%d)\n", info.nccl_version / 10000,
                (info.nccl_version / 100) % 100, info.nccl_version % 100);
  } else {
    std::printf("NCCL: no\n");
  }
  if (info.devices.empty()) {
    std::printf("CUDA devices: none usable (%s)\n", info.problem.c_str());
  } else {
    for (size_t i = 0; i < info.devices.size(); ++i) {
      std::printf("CUDA device %zu: %s\n", i, info.devices[i].c_str());
    }
  }
#endif
  return 0;
}

}  // namespace rlaif::cli
