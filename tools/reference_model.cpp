#include "tools/reference_model.h"

#include <cstdio>
#include <filesystem>

#include "io/model_dir.h"
#include "tools/train_flags.h"

namespace rlaif::cli {

DpoReference reference_from_flags(const Flags& flags, const Transformer& policy, bool adapters,
                                  const std::string& model_dir, const std::string& out_dir,
                                  const std::vector<TokenizedPair>& train,
                                  const std::vector<TokenizedPair>& val, int64_t batch,
                                  Communicator& comm, bool lead, const char* command,
                                  std::unique_ptr<Transformer>& keep_alive) {
  const std::string ref_dir = flags.str("ref").empty() ? model_dir : flags.str("ref");
  const Device device = policy.device();
  DpoReference reference;
  // With adapters and no --ref, the reference is the policy with its adapters off.
  Transformer base_view = policy;
  base_view.set_adapters_enabled(false);
  if (flags.on("precompute-ref")) {
    const std::string cache =
        (std::filesystem::path(out_dir) / "ref_logprobs.safetensors").string();
    bool reused = false;
    if (flags.str("ref").empty()) {
      // The reference is the starting policy, and the policy still holds those weights (a resume
      // restores its checkpoint only inside train()): no second copy is needed.
      std::tie(reference.train, reference.val) = cached_ref_logprobs(
          cache, adapters ? base_view : policy, train, val, batch, &reused, &comm);
    } else {
      Transformer ref = load_model(ref_dir, device, model_dtype(flags));  // freed on return
      std::tie(reference.train, reference.val) =
          cached_ref_logprobs(cache, ref, train, val, batch, &reused, &comm);
    }
    if (lead)
      std::fprintf(stderr, "%s: reference log-probs %s %s\n", command,
                   reused ? "read from" : "written to", cache.c_str());
  } else if (adapters && flags.str("ref").empty()) {
    keep_alive = std::make_unique<Transformer>(base_view);
    reference.model = keep_alive.get();
  } else {
    keep_alive = std::make_unique<Transformer>(load_model(ref_dir, device, model_dtype(flags)));
    keep_alive->set_requires_grad(false);
    reference.model = keep_alive.get();
  }
  return reference;
}

}  // namespace rlaif::cli
