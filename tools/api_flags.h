// The flags and plumbing that the commands talking to an OpenAI-compatible API share (distill,
// label, eval, and ppo's critic): declared once so that they document and parse them alike.
#pragma once

#include <rapidjson/document.h>

#include <string>
#include <string_view>
#include <vector>

#include "io/llm_client.h"
#include "io/spend_estimate.h"
#include "tools/cli_flags.h"

namespace rlaif::cli {

// The exit status of a command that a spending limit (--max-requests, --max-total-tokens)
// stopped before it had every answer: what it had is written and cached, and a re-run with a
// higher limit continues from the cache.
inline constexpr int kSpendLimitExit = 3;

// Declares --api-base and --api-model (required; `role` says whose: "teacher", "critic") and
// --concurrency --max-rpm --timeout --max-attempts --cache, the spending limits and --dry-run.
void declare_api_flags(Flags& flags, const std::string& role);

// Declares --max-requests and --max-total-tokens (`what` names the requests: "API", "critic").
void declare_spend_flags(Flags& flags, const std::string& what);
// The limits from those flags; UsageError for a negative one.
SpendLimits spend_limits(const Flags& flags);

// The line every API run ends with, on stderr: "COMMAND: spent 12 requests, ...". When the limit
// stopped the run, says which and how to continue. Returns whether the limit stopped it.
bool report_spend(const std::string& command, const LlmClient& client);
// --dry-run: prints the estimate (stderr) and {"dry_run": true, "requests", "cached",
// "prompt_tokens", "max_completion_tokens"} (stdout).
void print_dry_run(const std::string& command, const SpendEstimate& estimate);

// The client's options from those flags, the key from OPENAI_API_KEY. The cache is --cache when
// given, else `default_cache` ("" for none); its directory is created. UsageError for values
// out of range.
ClientOptions api_client_options(const Flags& flags, const std::string& default_cache);

// Creates the directory that will hold `file` (Error naming it when that fails).
void ensure_parent_dir(const std::string& file);

// OUT_DIR/requests.jsonl for an output file OUT_DIR/NAME: the cache every command writing into
// one directory shares (entries are keyed by the request, so sharing is safe).
std::string cache_beside(const std::string& out_file);

// Whether the spending limit kept this item from being sent (not a failure: a re-run with a
// higher limit asks for it).
bool not_sent(const CompletionResult& result);

// Prints up to `show` failed items' errors and the count of the rest to stderr; returns the
// number of failed items (items not sent for the spending limit are not failures).
size_t report_failures(const std::string& command, const std::vector<CompletionResult>& results,
                       size_t show = 5);

// Adds requests_sent, cached, prompt_tokens and completion_tokens to a JSON summary.
void add_usage(rapidjson::Document& summary, const ApiUsage& usage);
// Adds "spent": {"requests", "prompt_tokens", "completion_tokens", "estimated_responses"} and
// "stopped_by_spend_limit" to a JSON summary.
void add_spend(rapidjson::Document& summary, const LlmClient& client);
// The same two members as JSON text, `, "spent": {...}, "stopped_by_spend_limit": B`, for the
// summaries training commands print by hand.
std::string spend_members(const LlmClient& client, bool stopped);
// Ends the JSON summary line a training command prints by hand: the spend members of `api` (when
// not null), then `, "checkpoint": ...}` and kSpendLimitExit when a spending limit stopped the
// run (`spend_limit_stop` not empty), else `, "model": OUT_DIR}` and 0. Returns the exit status.
int end_summary_line(const LlmClient* api, const std::string& spend_limit_stop,
                     const std::string& checkpoint, const std::string& out_dir);

// Adds a string member (copied) to a JSON object.
void add_string(rapidjson::Value& object, const char* key, std::string_view value,
                rapidjson::Document::AllocatorType& a);
// A JSON array of strings (copied).
rapidjson::Value string_array(const std::vector<std::string>& values,
                              rapidjson::Document::AllocatorType& a);

}  // namespace rlaif::cli
