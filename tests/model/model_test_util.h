// Small models and inputs shared by the model tests.
#pragma once

#include <filesystem>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "autograd/node.h"
#include "kernels/backend.h"
#include "model/lora.h"
#include "model/transformer.h"
#include "tests/support/source_dir.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_models.h"

namespace rlaif::testing {

using test::source_dir;

// Whether CUDA device 0 can run this binary's CUDA backend; if not, *why says why (for a skip).
inline bool cuda_usable(std::string* why) {
  if (!backend_available(DeviceType::cuda)) {
    *why = "this binary has no CUDA backend";
    return false;
  }
  try {
    backend_for(Device::cuda(0));
    return true;
  } catch (const Error& e) {
    *why = e.what();
    return false;
  }
}

inline std::string stories_dir() {
  return source_dir() + "/data/models/stories260K";
}

using test::tiny_gemma3;
using test::tiny_gpt2;
using test::tiny_llama;
using test::tiny_qwen3;

// A [2, 5] batch: row 0 is 5 real tokens; row 1 is 2 left pads (own segment) then 3 tokens.
inline TransformerInput tiny_batch(int64_t vocab) {
  std::vector<int32_t> ids = {1, 5, 7, 2, 9, 0, 0, 3, 11, 4};
  for (auto& id : ids) id = static_cast<int32_t>(id % vocab);
  std::vector<int32_t> pos = {0, 1, 2, 3, 4, 0, 0, 0, 1, 2};
  std::vector<int32_t> seg = {0, 0, 0, 0, 0, -1, -1, 0, 0, 0};
  return {Tensor::from_vector(ids, {2, 5}), Tensor::from_vector(pos, {2, 5}),
          Tensor::from_vector(seg, {2, 5})};
}

// Next-token targets for tiny_batch with padding positions ignored (-100).
inline Tensor tiny_targets(int64_t vocab) {
  std::vector<int32_t> t = {5, 7, 2, 9, 4, -100, -100, 11, 4, 6};
  for (auto& id : t) {
    if (id >= 0) id = static_cast<int32_t>(id % vocab);
  }
  return Tensor::from_vector(t, {2, 5});
}

using test::TempDir;

// How many nodes of the graph behind v run `op`.
inline int count_ops(const Variable& v, const std::string& op) {
  int n = 0;
  std::vector<const Node*> stack;
  std::unordered_set<const Node*> seen;
  if (v.grad_fn()) stack.push_back(v.grad_fn().get());
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    if (!seen.insert(node).second) continue;
    n += node->op == op;
    for (const Variable& in : node->inputs) {
      if (in.defined() && in.grad_fn()) stack.push_back(in.grad_fn().get());
    }
  }
  return n;
}

// A LoRA configuration of rank r on `targets` (PEFT module names).
inline LoraConfig lora(std::vector<std::string> targets, int64_t r = 4, double alpha = 8) {
  LoraConfig c;
  c.r = r;
  c.alpha = alpha;
  c.targets = std::move(targets);
  return c;
}

}  // namespace rlaif::testing
