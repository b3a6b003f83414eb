#include "io/llm_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <queue>
#include <random>
#include <unordered_map>

#include "io/api_response.h"
#include "io/request_cache.h"
#include "io/retry_policy.h"
#include "io/sha256.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

using Clock = std::chrono::steady_clock;

// A reply larger than this is not a completion: stop reading rather than fill memory.
constexpr size_t kMaxResponseBytes = size_t{64} << 20;
// How often the loop looks at the stop check while waiting on the network.
constexpr auto kStopPollInterval = std::chrono::milliseconds(50);

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    RLAIF_CHECK(rc == CURLE_OK, "libcurl: cannot initialise: ", curl_easy_strerror(rc));
  });
}

struct UrlParts {
  std::string scheme;  // lowercase
  std::string host;    // lowercase; IPv6 addresses in brackets
};

// Parsed by libcurl itself, so the host checked is the host curl connects to (no disagreement
// over "http://127.0.0.1@evil.example/" and the like).
std::optional<UrlParts> parse_url(const std::string& url) {
  CURLU* handle = curl_url();
  if (handle == nullptr) return std::nullopt;
  std::optional<UrlParts> parts;
  char* scheme = nullptr;
  char* host = nullptr;
  if (curl_url_set(handle, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
      curl_url_get(handle, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(handle, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
    parts = UrlParts{scheme, host};
    for (std::string* s : {&parts->scheme, &parts->host}) {
      for (char& c : *s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  curl_free(scheme);
  curl_free(host);
  curl_url_cleanup(handle);
  return parts;
}

bool is_loopback_host(std::string host) {
  if (host == "localhost") return true;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (size_t zone = host.find('%'); zone != std::string::npos) host.resize(zone);
    in6_addr v6{};
    if (inet_pton(AF_INET6, host.c_str(), &v6) != 1) return false;
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) != 1) return false;
  return (ntohl(v4.s_addr) >> 24) == 127;
}

std::string compact_count(int64_t n) {
  char buf[32];
  if (n < 1000) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  } else if (n < 1000000) {
    std::snprintf(buf, sizeof buf, "%.1fk", static_cast<double>(n) / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(n) / 1e6);
  }
  return buf;
}

// One HTTP request in flight.
struct Transfer {
  CURL* easy = nullptr;
  size_t job = 0;
  std::string response;
  bool too_large = false;
  std::optional<double> retry_after_s;
  char error[CURL_ERROR_SIZE] = {0};

  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);
  }
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t bytes = size * count;
  if (t->response.size() + bytes > kMaxResponseBytes) {
    t->too_large = true;
    return 0;  // makes curl abort the transfer with CURLE_WRITE_ERROR
  }
  t->response.append(data, bytes);
  return bytes;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t bytes = size * count;
  std::string_view line(data, bytes);
  if (line.rfind("HTTP/", 0) == 0) t->retry_after_s.reset();  // a new response (after a 100)
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return bytes;
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view value = line.substr(colon + 1);
  if (name == "retry-after") {
    if (auto s = parse_retry_after(value, std::time(nullptr))) t->retry_after_s = s;
  } else if (name == "retry-after-ms") {  // OpenAI's finer-grained form
    if (auto ms = parse_retry_after(value, std::time(nullptr))) t->retry_after_s = *ms / 1000;
  }
  return bytes;
}

// The requests of one complete_all() call that share a body: sent once, answered together.
struct Job {
  std::vector<size_t> items;  // request indices; the first names the job in errors
  std::string body;
  std::string key;
  std::string url;
  bool chat = false;
  int attempts = 0;
  double retry_wait_s = 0;  // the retry delays scheduled so far
};

}  // namespace

struct LlmClient::Impl {
  ClientOptions options;
  std::string base;  // api_base without its trailing slashes
  bool loopback = false;
  RequestCache cache;
  ApiUsage usage;
  int64_t retries = 0;  // requests that were retries
  std::function<bool()> should_stop;
  curl_slist* headers = nullptr;
  CURLM* multi = nullptr;
  Clock::time_point next_start{};  // the rate limit: no request starts before this
  std::mt19937_64 rng{std::random_device{}()};
  std::mutex mutex;  // one complete_all() at a time

  explicit Impl(ClientOptions o) : options(std::move(o)), cache(options.cache_path) {}

  ~Impl() {
    if (multi) curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
  }

  // Errors never show the key, even where a server echoes it back.
  std::string redact(std::string text) const {
    const std::string& key = options.api_key;
    if (key.empty()) return text;
    for (size_t at; (at = text.find(key)) != std::string::npos;) {
      text.replace(at, key.size(), "<OPENAI_API_KEY>");
    }
    return text;
  }

  void add_header(const std::string& line) {
    curl_slist* next = curl_slist_append(headers, line.c_str());
    RLAIF_CHECK(next != nullptr, "libcurl: out of memory building the request headers");
    headers = next;
  }

  std::unique_ptr<Transfer> start(std::vector<Job>& jobs, size_t job_index) {
    Job& job = jobs[job_index];
    auto t = std::make_unique<Transfer>();
    t->job = job_index;
    t->easy = curl_easy_init();
    RLAIF_CHECK(t->easy != nullptr, "libcurl: cannot create a transfer handle");
    CURL* e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, job.url.c_str());
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, job.body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(job.body.size()));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(std::max(1.0, std::ceil(options.timeout_s * 1000))));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for DNS timeouts: we may be threaded
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    // Certificates are checked (curl's default, stated so no one flips it) and redirects are not
    // followed: curl would resend our Authorization header to wherever they point.
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85 replaced the bitmask form
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "rlaif");
    // A loopback address means this machine: a proxy from the environment would resolve it on
    // the proxy's machine instead.
    if (loopback) curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    CURLMcode rc = curl_multi_add_handle(multi, e);
    RLAIF_CHECK(rc == CURLM_OK, "libcurl: cannot start a transfer: ", curl_multi_strerror(rc));
    ++job.attempts;
    ++usage.requests_sent;
    if (job.attempts > 1) ++retries;
    return t;
  }

  std::vector<CompletionResult> run(
      const std::vector<CompletionRequest>& requests,
      const std::function<void(size_t, const CompletionResult&)>& on_result);
};

std::vector<CompletionResult> LlmClient::Impl::run(
    const std::vector<CompletionRequest>& requests,
    const std::function<void(size_t, const CompletionResult&)>& on_result) {
  std::lock_guard lock(mutex);
  std::vector<CompletionResult> results(requests.size());
  auto name_of = [&](size_t i) {
    return requests[i].item.empty() ? "request " + std::to_string(i + 1) : requests[i].item;
  };

  // Bodies first, so that a malformed request throws before anything is sent.
  std::vector<Job> jobs;
  std::vector<std::pair<size_t, const ParsedCompletion*>> cached_items;
  std::unordered_map<std::string, size_t> job_of_key;
  for (size_t i = 0; i < requests.size(); ++i) {
    const CompletionRequest& r = requests[i];
    RLAIF_CHECK(std::isfinite(r.temperature) && r.temperature >= 0, name_of(i),
                ": temperature must be a finite number >= 0 (got ", r.temperature, ")");
    RLAIF_CHECK(r.max_tokens >= 1, name_of(i), ": max_tokens must be at least 1 (got ",
                r.max_tokens, ")");
    std::string body = request_body(r, options.model);
    std::string key = request_key(body);
    if (const ParsedCompletion* hit = cache.find(key)) {
      cached_items.emplace_back(i, hit);
    } else if (auto it = job_of_key.find(key); it != job_of_key.end()) {
      jobs[it->second].items.push_back(i);
    } else {
      job_of_key.emplace(key, jobs.size());
      bool chat = !r.messages.empty();
      jobs.push_back(Job{{i},
                         std::move(body),
                         std::move(key),
                         base + (chat ? "/chat/completions" : "/completions"),
                         chat});
    }
  }

  auto deliver = [&](size_t i, CompletionResult result) {
    results[i] = std::move(result);
    if (on_result) on_result(i, results[i]);
  };
  auto answered = [&](const ParsedCompletion& p, bool from_cache, int attempts,
                      double retry_wait_s) {
    CompletionResult r;
    r.ok = true;
    r.text = p.text;
    r.finish_reason = p.finish_reason;
    r.prompt_tokens = p.prompt_tokens;
    r.completion_tokens = p.completion_tokens;
    r.from_cache = from_cache;
    r.attempts = attempts;
    r.retry_wait_s = retry_wait_s;
    usage.prompt_tokens += p.prompt_tokens;
    usage.completion_tokens += p.completion_tokens;
    usage.cached += from_cache;
    return r;
  };
  for (auto [i, hit] : cached_items) deliver(i, answered(*hit, true, 0, 0));

  size_t unfinished = jobs.size();
  // The first item of a job is the one sent; the others (same body) share its answer as if
  // cached, which is what a re-run would give them.
  auto succeed = [&](Job& job, const ParsedCompletion& p) {
    cache.append(job.key, p);
    --unfinished;
    for (size_t k = 0; k < job.items.size(); ++k) {
      deliver(job.items[k],
              answered(p, k > 0, k == 0 ? job.attempts : 0, k == 0 ? job.retry_wait_s : 0));
    }
  };
  auto fail = [&](Job& job, const std::string& why, bool interrupted) {
    --unfinished;
    for (size_t i : job.items) {
      CompletionResult r;
      r.attempts = job.attempts;
      r.retry_wait_s = job.retry_wait_s;
      if (interrupted) {
        // Not delivered: the item did not finish, and a re-run will ask for it.
        r.error = "interrupted";
        results[i] = std::move(r);
      } else {
        ++usage.failed;
        r.error = redact(name_of(i) + ": " + why);
        deliver(i, std::move(r));
      }
    }
  };

  using Ready = std::pair<Clock::time_point, size_t>;
  std::priority_queue<Ready, std::vector<Ready>, std::greater<>> retry_queue;
  std::deque<size_t> fresh;
  for (size_t j = 0; j < jobs.size(); ++j) fresh.push_back(j);

  // Transfers in flight; whatever happens (an exception from on_result, a full disk), none is
  // left attached to the multi handle when this call returns.
  struct InFlight {
    CURLM* multi;
    std::vector<std::unique_ptr<Transfer>> transfers;
    ~InFlight() {
      for (auto& t : transfers) curl_multi_remove_handle(multi, t->easy);
    }
  } in_flight{multi, {}};

  const auto rate_interval = options.max_rpm > 0
                                 ? std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(60.0 / options.max_rpm))
                                 : Clock::duration::zero();
  const size_t concurrency = static_cast<size_t>(options.concurrency);
  const BackoffOptions backoff{options.backoff_s, options.max_backoff_s};
  bool stopping = false;

  while (unfinished > 0) {
    // A stop lets the requests in flight finish (they are paid for; their answers go to the
    // cache) but starts nothing more.
    if (!stopping && should_stop && should_stop()) {
      stopping = true;
      for (size_t j : fresh) fail(jobs[j], "", true);
      fresh.clear();
      for (; !retry_queue.empty(); retry_queue.pop())
        fail(jobs[retry_queue.top().second], "", true);
      if (unfinished == 0) break;
    }

    Clock::time_point now = Clock::now();
    while (!stopping && in_flight.transfers.size() < concurrency) {
      bool retry_ready = !retry_queue.empty() && retry_queue.top().first <= now;
      if (!retry_ready && fresh.empty()) break;
      if (rate_interval.count() > 0 && now < next_start) break;
      size_t j;
      if (retry_ready) {
        j = retry_queue.top().second;
        retry_queue.pop();
      } else {
        j = fresh.front();
        fresh.pop_front();
      }
      next_start = now + rate_interval;
      in_flight.transfers.push_back(start(jobs, j));
    }

    int running = 0;
    CURLMcode mrc = curl_multi_perform(multi, &running);
    RLAIF_CHECK(mrc == CURLM_OK, "libcurl: ", curl_multi_strerror(mrc));
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURLcode code = msg->data.result;
      auto it = std::find_if(in_flight.transfers.begin(), in_flight.transfers.end(),
                             [&](const auto& t) { return t->easy == msg->easy_handle; });
      if (it == in_flight.transfers.end()) continue;
      std::unique_ptr<Transfer> t = std::move(*it);
      in_flight.transfers.erase(it);
      curl_multi_remove_handle(multi, t->easy);
      Job& job = jobs[t->job];

      long status = 0;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
      std::string why;
      bool retryable = false;
      if (code != CURLE_OK) {
        why = t->too_large ? "the response is larger than " +
                                 std::to_string(kMaxResponseBytes >> 20) + " MiB"
              : t->error[0] ? std::string(t->error)
                            : std::string(curl_easy_strerror(code));
        why += " (" + base + ")";
        retryable = !t->too_large && is_retryable_transport_error(code);
      } else if (status >= 200 && status < 300) {
        ParsedCompletion parsed;
        std::string invalid = parse_completion_response(t->response, job.chat, parsed);
        if (invalid.empty()) {
          succeed(job, parsed);
          continue;
        }
        why = "invalid response from " + job.url + ": " + invalid;
      } else {
        why = "HTTP " + std::to_string(status) + " from " + job.url + ": " +
              api_error_message(t->response);
        retryable = is_retryable_status(status);
      }
      if (!retryable) {
        fail(job, why, false);
      } else if (stopping) {
        fail(job, "", true);
      } else if (job.attempts >= options.max_attempts) {
        fail(job, why + " (gave up after " + std::to_string(job.attempts) + " attempts)", false);
      } else {
        double delay = retry_delay_s(backoff, job.attempts, t->retry_after_s, rng);
        job.retry_wait_s += delay;
        retry_queue.emplace(Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(delay)),
                            t->job);
      }
    }
    if (unfinished == 0) break;

    // Sleep until the network has news, the next start is due, or it is time to look at the
    // stop check again.
    Clock::duration wait = kStopPollInterval;
    if (!stopping && in_flight.transfers.size() < concurrency &&
        (!fresh.empty() || !retry_queue.empty())) {
      Clock::time_point due = fresh.empty() ? retry_queue.top().first : Clock::now();
      if (!fresh.empty() && !retry_queue.empty()) due = std::min(due, retry_queue.top().first);
      if (rate_interval.count() > 0) due = std::max(due, next_start);
      wait = std::clamp<Clock::duration>(due - Clock::now(), Clock::duration::zero(), wait);
    }
    auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    mrc = curl_multi_poll(multi, nullptr, 0, static_cast<int>(wait_ms), nullptr);
    RLAIF_CHECK(mrc == CURLM_OK, "libcurl: ", curl_multi_strerror(mrc));
  }
  return results;
}

LlmClient::LlmClient(ClientOptions options) {
  const ClientOptions& o = options;
  RLAIF_CHECK(!o.api_base.empty(),
              "--api-base is empty: give the API's base URL, e.g. "
              "https://api.openai.com/v1 or http://127.0.0.1:8080/v1");
  std::optional<UrlParts> url = parse_url(o.api_base);
  RLAIF_CHECK(url && (url->scheme == "http" || url->scheme == "https") && !url->host.empty(),
              "--api-base ", o.api_base, ": not an http:// or https:// URL");
  RLAIF_CHECK(!o.model.empty(), "--api-model is empty: give the model name the API expects");
  for (char c : o.api_key) {
    RLAIF_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f,
                "OPENAI_API_KEY contains a control character (a stray newline?)");
  }
  bool loopback = is_loopback_host(url->host);
  RLAIF_CHECK(o.api_key.empty() || url->scheme == "https" || loopback, "--api-base ", o.api_base,
              ": refusing to send OPENAI_API_KEY over plain http to ", url->host,
              "; use https (or a loopback address for a local server)");
  RLAIF_CHECK(o.concurrency >= 1, "--concurrency must be at least 1 (got ", o.concurrency, ")");
  RLAIF_CHECK(std::isfinite(o.max_rpm) && o.max_rpm >= 0,
              "--max-rpm must be >= 0 (0 = no limit; got ", o.max_rpm, ")");
  RLAIF_CHECK(std::isfinite(o.timeout_s) && o.timeout_s > 0,
              "--timeout must be a positive number of seconds (got ", o.timeout_s, ")");
  RLAIF_CHECK(o.max_attempts >= 1, "--max-attempts must be at least 1 (got ", o.max_attempts, ")");
  RLAIF_CHECK(std::isfinite(o.backoff_s) && o.backoff_s >= 0 && std::isfinite(o.max_backoff_s) &&
                  o.max_backoff_s >= 0,
              "--backoff and --max-backoff must be >= 0 seconds (got ", o.backoff_s, " and ",
              o.max_backoff_s, ")");
  init_curl_once();

  impl_ = std::make_unique<Impl>(std::move(options));
  impl_->loopback = loopback;
  impl_->base = impl_->options.api_base;
  while (!impl_->base.empty() && impl_->base.back() == '/') impl_->base.pop_back();
  impl_->add_header("Content-Type: application/json");
  impl_->add_header("Accept: application/json");
  impl_->add_header("Expect:");  // no 100-continue round trip before large bodies
  if (!impl_->options.api_key.empty()) {
    impl_->add_header("Authorization: Bearer " + impl_->options.api_key);
  }
  impl_->multi = curl_multi_init();
  RLAIF_CHECK(impl_->multi != nullptr, "libcurl: cannot create a multi handle");
}

LlmClient::~LlmClient() = default;

std::vector<CompletionResult> LlmClient::complete_all(
    const std::vector<CompletionRequest>& requests,
    const std::function<void(size_t, const CompletionResult&)>& on_result) {
  return impl_->run(requests, on_result);
}

CompletionResult LlmClient::complete(const CompletionRequest& request) {
  return impl_->run({request}, {}).front();
}

void LlmClient::set_stop_check(std::function<bool()> should_stop) {
  impl_->should_stop = std::move(should_stop);
}

const ApiUsage& LlmClient::usage() const {
  return impl_->usage;
}

std::string LlmClient::usage_summary() const {
  const ApiUsage& u = impl_->usage;
  std::string s = std::to_string(u.requests_sent) + " requests (" + std::to_string(impl_->retries) +
                  " retried), " + std::to_string(u.cached) + " cached";
  if (u.failed > 0) s += ", " + std::to_string(u.failed) + " failed";
  return s + "; " + compact_count(u.prompt_tokens) + " prompt + " +
         compact_count(u.completion_tokens) + " completion tokens";
}

const ClientOptions& LlmClient::options() const {
  return impl_->options;
}

std::string api_key_from_env() {
  const char* key = std::getenv("OPENAI_API_KEY");
  if (key == nullptr) return "";
  // Keys pasted from files keep their newline; the header must not.
  std::string s(key);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  while (!s.empty() && s.front() == ' ') s.erase(s.begin());
  return s;
}

bool is_loopback_url(const std::string& url) {
  std::optional<UrlParts> parts = parse_url(url);
  return parts && is_loopback_host(parts->host);
}

std::string request_body(const CompletionRequest& request, const std::string& model) {
  RLAIF_CHECK(std::isfinite(request.temperature), "request_body: temperature is not finite");
  // Written field by field in a fixed order, so that the same request always hashes to the same
  // cache key.
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto str = [&](const std::string& s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  };
  w.StartObject();
  w.Key("model");
  str(model);
  if (!request.messages.empty()) {
    w.Key("messages");
    w.StartArray();
    for (const ChatMessage& m : request.messages) {
      w.StartObject();
      w.Key("role");
      str(m.role);
      w.Key("content");
      str(m.content);
      w.EndObject();
    }
    w.EndArray();
  } else {
    w.Key("prompt");
    str(request.prompt);
  }
  w.Key("temperature");
  w.Double(request.temperature);
  w.Key("max_tokens");
  w.Int64(request.max_tokens);
  if (request.seed) {
    w.Key("seed");
    w.Uint64(*request.seed);
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string request_key(const std::string& body) {
  return sha256_hex(body);
}

}  // namespace rlaif
