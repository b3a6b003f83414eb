#include "tools/output_flags.h"

#include <filesystem>

namespace rlaif::cli {

void declare_overwrite_flag(Flags& flags) {
  flags.flag("overwrite", "replace outputs that already exist (without it they are refused)");
}

void check_outputs_free(const Flags& flags, const std::vector<std::string>& paths) {
  if (flags.on("overwrite")) return;
  std::string existing;
  int count = 0;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (path.empty() || !std::filesystem::exists(path, ec)) continue;
    existing += (count++ ? ", " : "") + path;
  }
  if (count == 0) return;
  throw UsageError(existing + (count == 1 ? " already exists" : " already exist") +
                   ": pass --overwrite to replace " + (count == 1 ? "it" : "them") +
                   ", or choose another --out");
}

}  // namespace rlaif::cli
