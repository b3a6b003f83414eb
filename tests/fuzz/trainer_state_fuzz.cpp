// Fuzzes the reading of a checkpoint's trainer state (io/checkpoint.h, read_trainer_state):
// trainer_state/state.json and trainer_state/state.safetensors, packed in one input as
//   STATE.JSON, fuzz::kPartSeparator, STATE.SAFETENSORS
#include <filesystem>

#include "io/checkpoint.h"
#include "runtime/error.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rlaif;
  const fuzz::ScratchDir& dir = fuzz::scratch();
  dir.clear();
  std::filesystem::create_directories(dir.file("trainer_state"));
  std::vector<std::string_view> parts =
      fuzz::split_parts(fuzz::as_text(data, size), fuzz::kPartSeparator, 2);
  dir.write("trainer_state/state.json", parts[0]);
  if (parts.size() > 1) dir.write("trainer_state/state.safetensors", parts[1]);
  try {
    TrainerCheckpoint ckpt = read_trainer_state(dir.str());
    if (ckpt.step < 0) __builtin_trap();
    for (const auto& [name, tensor] : ckpt.tensors) {
      if (tensor.nbytes() > 0)
        fuzz::consume(static_cast<const uint8_t*>(tensor.raw_data())[tensor.nbytes() - 1]);
    }
  } catch (const Error&) {
  }
  return 0;
}
