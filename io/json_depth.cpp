#include "io/json_depth.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace rlaif {

size_t json_depth(const rapidjson::Value& value) {
  size_t deepest = 0;
  std::vector<std::pair<const rapidjson::Value*, size_t>> pending = {{&value, 0}};
  while (!pending.empty()) {
    const auto [v, depth] = pending.back();
    pending.pop_back();
    if (v->IsArray()) {
      deepest = std::max(deepest, depth + 1);
      for (const auto& item : v->GetArray()) pending.emplace_back(&item, depth + 1);
    } else if (v->IsObject()) {
      deepest = std::max(deepest, depth + 1);
      for (const auto& member : v->GetObject()) pending.emplace_back(&member.value, depth + 1);
    }
  }
  return deepest;
}

}  // namespace rlaif
