// What a run directory holds that rlaif wrote, so that a command never writes a new run over an
// old one by accident: a training command (or `init`) given a directory that already holds a run
// or a model refuses it unless told to continue it (--resume) or to replace it (--overwrite,
// which removes these entries first, so old and new are never mixed: no step_4 of the first run
// beside step_2 of the second).
//
// The entries: a run's metrics.jsonl, checkpoints/, rounds/ (online DPO's judged pairs),
// value_model/ (PPO), TensorBoard event files; a model directory's config.json, weights
// (model.safetensors, shards and their index), adapters (adapter_config.json,
// adapter_model.safetensors) and tokenizer files (tokenizer_files() of io/model_dir.h). The
// caches are not among them: the API answers (requests.jsonl, reward_requests.jsonl) and DPO's
// reference log-probs (ref_logprobs.safetensors) are keyed by what they were computed from, so a
// new run reusing them gets correct values and pays for nothing twice. Files rlaif does not
// write are never touched.
#pragma once

#include <string>
#include <vector>

namespace rlaif {

// The names of those entries that exist directly in `dir` (sorted; none when `dir` is missing).
std::vector<std::string> run_entries(const std::string& dir);

// Removes those entries (recursively for directories). Error naming the entry it cannot remove.
void remove_run_entries(const std::string& dir);

// "metrics.jsonl, checkpoints/ and 3 more": a short list of run_entries for messages.
std::string describe_run_entries(const std::string& dir, const std::vector<std::string>& entries);

}  // namespace rlaif
