// The LLM client's request cache: an append-only JSONL file of completed responses, one line
// each, keyed by the hash of the request body:
//   {"key": "<sha256 of the body>", "response": {"text": ..., "finish_reason": ...,
//    "prompt_tokens": N, "completion_tokens": N}}
// Each line is flushed and fsynced as it is written, so a run that dies at any moment keeps every
// response it had received, and a re-run asks for none of them again. Only the key is stored of
// the request: no prompt and no credentials.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "io/api_response.h"

namespace rlaif {

class JsonlWriter;

class RequestCache {
 public:
  // Loads `path` when it exists and opens it for appending (creating it). A last line without
  // its newline is a write torn by a crash: it is dropped from the file, and its request is sent
  // again. A malformed complete line is an Error naming PATH:LINE. path "" = no cache.
  explicit RequestCache(std::string path);
  ~RequestCache();
  RequestCache(const RequestCache&) = delete;
  RequestCache& operator=(const RequestCache&) = delete;

  // The cached response for `key`, or nullptr.
  const ParsedCompletion* find(const std::string& key) const;
  // Records a response: in memory, and on disk (flushed and fsynced) when the cache has a file.
  void append(const std::string& key, const ParsedCompletion& response);

  size_t size() const { return entries_.size(); }
  const std::string& path() const { return path_; }

 private:
  void load();

  std::string path_;
  std::unordered_map<std::string, ParsedCompletion> entries_;
  std::unique_ptr<JsonlWriter> writer_;
};

}  // namespace rlaif
