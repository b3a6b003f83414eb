#include "io/reward_server.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>

#include "io/http_batch.h"
#include "io/llm_client.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

std::string shortened(const std::string& text, size_t max_chars = 60) {
  std::string out;
  for (char c : text.substr(0, max_chars)) out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  return text.size() > max_chars ? out + "..." : out;
}

// The scores as the cache keeps them: a JSON array (doubles round-trip exactly).
std::string scores_json(const std::vector<double>& scores) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("scores");
  w.StartArray();
  for (double s : scores) w.Double(s);
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace

std::string reward_server_body(const std::vector<RewardServerItem>& items) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto str = [&](const std::string& s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  };
  w.StartObject();
  w.Key("items");
  w.StartArray();
  for (const RewardServerItem& item : items) {
    w.StartObject();
    w.Key("prompt");
    str(item.prompt);
    w.Key("completion");
    str(item.completion);
    w.Key("columns");
    w.RawValue(item.columns_json.data(), item.columns_json.size(), rapidjson::kObjectType);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string parse_reward_server_answer(std::string_view body, size_t expected,
                                       std::vector<double>& scores) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError()) {
    return std::string("not JSON (") + rapidjson::GetParseError_En(doc.GetParseError()) +
           " at offset " + std::to_string(doc.GetErrorOffset()) + ")";
  }
  if (!doc.IsObject()) return "the answer must be a JSON object {\"scores\": [...]}";
  auto it = doc.FindMember("scores");
  if (it == doc.MemberEnd() || !it->value.IsArray()) {
    return "the answer has no array \"scores\"";
  }
  const auto& array = it->value;
  if (array.Size() != expected) {
    return std::to_string(array.Size()) + " scores for " + std::to_string(expected) + " items";
  }
  scores.assign(expected, 0.0);
  for (rapidjson::SizeType i = 0; i < array.Size(); ++i) {
    // RapidJSON reads numbers too large for a double as infinity.
    if (!array[i].IsNumber() || !std::isfinite(array[i].GetDouble())) {
      return "scores[" + std::to_string(i) + "] is not a finite number";
    }
    scores[i] = array[i].GetDouble();
  }
  return "";
}

RewardServerClient::RewardServerClient(RewardServerOptions options) : options_(std::move(options)) {
  const RewardServerOptions& o = options_;
  RLAIF_CHECK(is_http_url(o.url), "reward server ", o.url, ": not an http:// or https:// URL");
  RLAIF_CHECK(o.concurrency >= 1, "reward server: concurrency must be at least 1");
  RLAIF_CHECK(o.items_per_request >= 1, "reward server: items per request must be at least 1");
  RLAIF_CHECK(std::isfinite(o.timeout_s) && o.timeout_s > 0,
              "reward server: the timeout must be a positive number of seconds");
  RLAIF_CHECK(o.max_attempts >= 1, "reward server: max attempts must be at least 1");
  RLAIF_CHECK(std::isfinite(o.backoff_s) && o.backoff_s >= 0 && std::isfinite(o.max_backoff_s) &&
                  o.max_backoff_s >= 0,
              "reward server: backoff delays must be >= 0 seconds");
  HttpBatchOptions http;
  http.server = o.url;
  http.loopback = is_loopback_host(parse_url(o.url)->host);
  http.concurrency = o.concurrency;
  http.timeout_s = o.timeout_s;
  http.max_attempts = o.max_attempts;
  http.backoff_s = o.backoff_s;
  http.max_backoff_s = o.max_backoff_s;
  http.cache_path = o.cache_path;
  http_ = std::make_unique<HttpBatchClient>(std::move(http));
}

RewardServerClient::~RewardServerClient() = default;

std::vector<double> RewardServerClient::score(const std::vector<RewardServerItem>& items,
                                              const std::string& call) {
  const size_t per_request = static_cast<size_t>(options_.items_per_request);
  std::vector<HttpPost> posts;
  std::vector<size_t> first;  // each request's first item
  for (size_t start = 0; start < items.size(); start += per_request) {
    const size_t end = std::min(items.size(), start + per_request);
    const std::vector<RewardServerItem> chunk(items.begin() + static_cast<ptrdiff_t>(start),
                                              items.begin() + static_cast<ptrdiff_t>(end));
    std::string body = reward_server_body(chunk);
    std::string key = request_key(body);
    posts.push_back(HttpPost{options_.url, std::move(body), std::move(key),
                             "reward server request " + std::to_string(posts.size() + 1) + " of " +
                                 call + " (items " + std::to_string(start + 1) + "-" +
                                 std::to_string(end) + ")"});
    first.push_back(start);
  }
  auto count = [&](size_t r) { return std::min(per_request, items.size() - first[r]); };
  // A checked answer is cached as {"scores": [...]}, which reads back the same way.
  auto read = [&](std::string_view body, size_t r, ParsedCompletion& out) {
    std::vector<double> scores;
    std::string why = parse_reward_server_answer(body, count(r), scores);
    if (const size_t at = why.find("scores["); at == 0) {
      const size_t i = first[r] + std::stoul(why.substr(7));
      why += " (item " + std::to_string(i + 1) + ": the completion \"" +
             shortened(items[i].completion) + "\" of the prompt \"" + shortened(items[i].prompt) +
             "\")";
    }
    if (why.empty()) out.text = scores_json(scores);
    return why;
  };
  const std::vector<HttpPostResult> results = http_->post_all(posts, read);
  std::vector<double> scores(items.size());
  for (size_t r = 0; r < results.size(); ++r) {
    RLAIF_CHECK(results[r].ok, results[r].error == "interrupted" ? posts[r].item + ": interrupted"
                                                                 : results[r].error);
    cached_ += results[r].from_cache;
    std::vector<double> chunk;
    std::string why = parse_reward_server_answer(results[r].answer.text, count(r), chunk);
    RLAIF_CHECK(why.empty(), posts[r].item, ": the cached answer ", why,
                " (delete the cache file to ask again)");
    std::copy(chunk.begin(), chunk.end(), scores.begin() + static_cast<ptrdiff_t>(first[r]));
  }
  return scores;
}

void RewardServerClient::set_stop_check(std::function<bool()> should_stop) {
  http_->set_stop_check(std::move(should_stop));
}

int64_t RewardServerClient::requests_sent() const {
  return http_->requests_sent();
}

std::string RewardServerClient::usage_summary() const {
  std::string s = std::to_string(http_->requests_sent()) + " requests (" +
                  std::to_string(http_->retries()) + " retried), " + std::to_string(cached_) +
                  " cached";
  if (http_->failed() > 0) s += ", " + std::to_string(http_->failed()) + " failed";
  return s;
}

}  // namespace rlaif
