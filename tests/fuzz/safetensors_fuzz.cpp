// Fuzzes the safetensors reader (io/safetensors.h): header length, JSON header, dtypes, shapes,
// offsets and the tiling of the data buffer, then every tensor taken out of the mapping.
#include "io/safetensors.h"
#include "runtime/error.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rlaif;
  const std::string path = fuzz::scratch().write("model.safetensors", fuzz::as_text(data, size));
  try {
    SafetensorsFile file = SafetensorsFile::open(path);
    uint64_t checksum = 0;
    for (const std::string& name : file.names()) {
      const TensorInfo& info = file.info(name);
      Tensor t = file.tensor(name);
      // Reading every byte lets ASan check that the tensor lies inside the mapping.
      const auto* bytes = static_cast<const uint8_t*>(t.raw_data());
      for (uint64_t i = 0; i < info.nbytes(); ++i) checksum += bytes[i];
      if (t.nbytes() != info.nbytes()) __builtin_trap();
    }
    fuzz::consume(checksum + file.metadata().size());
  } catch (const Error&) {
  }
  return 0;
}
