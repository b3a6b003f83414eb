#include "io/http_batch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <mutex>
#include <queue>
#include <random>
#include <unordered_map>

#include "io/request_cache.h"
#include "io/retry_policy.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

using Clock = std::chrono::steady_clock;

// A reply larger than this is not an answer: stop reading rather than fill memory.
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

// The requests of one post_all() call that share a key: sent once, answered together.
struct Job {
  std::vector<size_t> items;  // request indices; the first names the job in errors
  const HttpPost* post = nullptr;
  int attempts = 0;
  double retry_wait_s = 0;  // the retry delays scheduled so far
};

}  // namespace

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

bool is_http_url(const std::string& url) {
  std::optional<UrlParts> parts = parse_url(url);
  return parts && (parts->scheme == "http" || parts->scheme == "https") && !parts->host.empty();
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

struct HttpBatchClient::Impl {
  HttpBatchOptions options;
  RequestCache cache;
  int64_t requests_sent = 0;
  int64_t retries = 0;  // requests that were retries
  int64_t failed = 0;
  std::function<bool()> should_stop;
  curl_slist* headers = nullptr;
  CURLM* multi = nullptr;
  Clock::time_point next_start{};  // the rate limit: no request starts before this
  std::mt19937_64 rng{std::random_device{}()};
  std::mutex mutex;  // one post_all() at a time

  explicit Impl(HttpBatchOptions o) : options(std::move(o)), cache(options.cache_path) {}

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
    curl_easy_setopt(e, CURLOPT_URL, job.post->url.c_str());
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, job.post->body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(job.post->body.size()));
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
    if (options.loopback) curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    CURLMcode rc = curl_multi_add_handle(multi, e);
    RLAIF_CHECK(rc == CURLM_OK, "libcurl: cannot start a transfer: ", curl_multi_strerror(rc));
    ++job.attempts;
    ++requests_sent;
    if (job.attempts > 1) ++retries;
    return t;
  }

  std::vector<HttpPostResult> run(
      const std::vector<HttpPost>& requests, const HttpAnswerReader& read,
      const std::function<void(size_t, const HttpPostResult&)>& on_result);
};

std::vector<HttpPostResult> HttpBatchClient::Impl::run(
    const std::vector<HttpPost>& requests, const HttpAnswerReader& read,
    const std::function<void(size_t, const HttpPostResult&)>& on_result) {
  std::lock_guard lock(mutex);
  std::vector<HttpPostResult> results(requests.size());
  auto name_of = [&](size_t i) {
    return requests[i].item.empty() ? "request " + std::to_string(i + 1) : requests[i].item;
  };

  std::vector<Job> jobs;
  std::vector<std::pair<size_t, const ParsedCompletion*>> cached_items;
  std::unordered_map<std::string, size_t> job_of_key;
  for (size_t i = 0; i < requests.size(); ++i) {
    const std::string& key = requests[i].key;
    if (const ParsedCompletion* hit = cache.find(key)) {
      cached_items.emplace_back(i, hit);
    } else if (auto it = job_of_key.find(key); it != job_of_key.end()) {
      jobs[it->second].items.push_back(i);
    } else {
      job_of_key.emplace(key, jobs.size());
      jobs.push_back(Job{{i}, &requests[i]});
    }
  }

  auto deliver = [&](size_t i, HttpPostResult result) {
    results[i] = std::move(result);
    if (on_result) on_result(i, results[i]);
  };
  auto answered = [](const ParsedCompletion& p, bool from_cache, int attempts,
                     double retry_wait_s) {
    HttpPostResult r;
    r.ok = true;
    r.answer = p;
    r.from_cache = from_cache;
    r.attempts = attempts;
    r.retry_wait_s = retry_wait_s;
    return r;
  };
  for (auto [i, hit] : cached_items) deliver(i, answered(*hit, true, 0, 0));

  size_t unfinished = jobs.size();
  // The first item of a job is the one sent; the others (same key) share its answer as if
  // cached, which is what a re-run would give them.
  auto succeed = [&](Job& job, const ParsedCompletion& p) {
    cache.append(job.post->key, p);
    --unfinished;
    for (size_t k = 0; k < job.items.size(); ++k) {
      deliver(job.items[k],
              answered(p, k > 0, k == 0 ? job.attempts : 0, k == 0 ? job.retry_wait_s : 0));
    }
  };
  // Why nothing more starts, once something stopped the call: "interrupted" (the stop check) or
  // kNotSentSpendLimit (the spending meter).
  std::string stop_reason;
  auto fail = [&](Job& job, const std::string& why, bool interrupted) {
    --unfinished;
    for (size_t i : job.items) {
      HttpPostResult r;
      r.attempts = job.attempts;
      r.retry_wait_s = job.retry_wait_s;
      if (interrupted) {
        // Not delivered: the item did not finish, and a re-run will ask for it.
        r.error = stop_reason;
        results[i] = std::move(r);
      } else {
        ++failed;
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

  // A stop lets the requests in flight finish (they are paid for; their answers go to the
  // cache) but starts nothing more.
  auto stop_starting = [&](const char* reason) {
    stopping = true;
    stop_reason = reason;
    for (size_t j : fresh) fail(jobs[j], "", true);
    fresh.clear();
    for (; !retry_queue.empty(); retry_queue.pop()) fail(jobs[retry_queue.top().second], "", true);
  };

  while (unfinished > 0) {
    if (!stopping && should_stop && should_stop()) {
      stop_starting("interrupted");
      if (unfinished == 0) break;
    }

    Clock::time_point now = Clock::now();
    while (!stopping && in_flight.transfers.size() < concurrency) {
      bool retry_ready = !retry_queue.empty() && retry_queue.top().first <= now;
      if (!retry_ready && fresh.empty()) break;
      if (rate_interval.count() > 0 && now < next_start) break;
      if (options.spend != nullptr && !options.spend->try_start_request()) {
        stop_starting(kNotSentSpendLimit);
        break;
      }
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
        why += " (" + options.server + ")";
        retryable = !t->too_large && is_retryable_transport_error(code);
      } else if (status >= 200 && status < 300) {
        ParsedCompletion parsed;
        std::string invalid = read(t->response, job.items.front(), parsed);
        if (invalid.empty() && options.spend != nullptr) {
          if (parsed.usage_reported) {
            options.spend->record_tokens(parsed.prompt_tokens, parsed.completion_tokens, false);
          } else {
            options.spend->record_tokens(estimate_tokens(job.post->body),
                                         estimate_tokens(parsed.text), true);
          }
        }
        if (invalid.empty()) {
          succeed(job, parsed);
          continue;
        }
        why = "invalid response from " + job.post->url + ": " + invalid;
      } else {
        why = "HTTP " + std::to_string(status) + " from " + job.post->url + ": " +
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

HttpBatchClient::HttpBatchClient(HttpBatchOptions options) {
  init_curl_once();
  impl_ = std::make_unique<Impl>(std::move(options));
  impl_->add_header("Content-Type: application/json");
  impl_->add_header("Accept: application/json");
  impl_->add_header("Expect:");  // no 100-continue round trip before large bodies
  if (!impl_->options.api_key.empty()) {
    impl_->add_header("Authorization: Bearer " + impl_->options.api_key);
  }
  impl_->multi = curl_multi_init();
  RLAIF_CHECK(impl_->multi != nullptr, "libcurl: cannot create a multi handle");
}

HttpBatchClient::~HttpBatchClient() = default;

std::vector<HttpPostResult> HttpBatchClient::post_all(
    const std::vector<HttpPost>& requests, const HttpAnswerReader& read,
    const std::function<void(size_t, const HttpPostResult&)>& on_result) {
  return impl_->run(requests, read, on_result);
}

void HttpBatchClient::set_stop_check(std::function<bool()> should_stop) {
  impl_->should_stop = std::move(should_stop);
}

const HttpBatchOptions& HttpBatchClient::options() const {
  return impl_->options;
}

int64_t HttpBatchClient::requests_sent() const {
  return impl_->requests_sent;
}

int64_t HttpBatchClient::retries() const {
  return impl_->retries;
}

int64_t HttpBatchClient::failed() const {
  return impl_->failed;
}

}  // namespace rlaif
