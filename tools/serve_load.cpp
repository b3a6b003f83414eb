#include "tools/serve_load.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <mutex>
#include <thread>

namespace rlaif::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Prompts of a few lengths, so that a batch holds prompts of different sizes.
const char* const kPrompts[] = {
    "Hi.",
    "Tell me a story about a big red ball.",
    "What did Lily see in the park?",
    "Once upon a time there was a little dog. What did the dog do?",
    "Sing a song.",
    "Tell me a story about a cat and a bird who were friends.",
    "Where is the sun?",
    "Tom had a toy car. Tell me what happened next.",
};

std::string chat_body(int64_t i, int64_t max_tokens, bool stream) {
  const char* prompt = kPrompts[static_cast<size_t>(i) % std::size(kPrompts)];
  return std::string(R"({"model":"bench","messages":[{"role":"user","content":")") + prompt +
         R"("}],"temperature":0,"max_tokens":)" + std::to_string(max_tokens) +
         (stream ? R"(,"stream":true,"stream_options":{"include_usage":true}})" : "}");
}

// An answer as the load clients judge it: whether one came (else why not), its status and
// body, and for a stream the seconds until the first event carrying text (NaN when none did).
struct Answer {
  bool came = false;
  std::string failure;
  int status = 0;
  std::string body;
  double first_text_s = NAN;
};

Answer answer_of(const httplib::Result& res, std::string body) {
  Answer a;
  a.came = static_cast<bool>(res);
  if (!res) {
    a.failure = httplib::to_string(res.error());
    return a;
  }
  a.status = res->status;
  a.body = std::move(body);
  return a;
}

Answer post_chat(httplib::Client& client, const std::string& body) {
  httplib::Result res = client.Post("/v1/chat/completions", body, "application/json");
  return answer_of(res, res ? res->body : std::string());
}

// A streamed chat completion: the events as they arrive, timed to the first with text.
Answer post_streamed(httplib::Client& client, const std::string& body) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string events;
  double first_text_s = NAN;
  size_t scanned = 0;  // events before this offset hold no text
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.headers = {{"Content-Type", "application/json"}};
  req.body = body;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    events.append(data, n);
    // A delta with text: "content":" followed by anything but the closing quote (the role
    // chunk's content is empty).
    for (size_t at = events.find("\"content\":\"", scanned);
         std::isnan(first_text_s) && at != std::string::npos && at + 11 < events.size();
         at = events.find("\"content\":\"", scanned)) {
      if (events[at + 11] != '"') {
        first_text_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
      scanned = at + 1;
    }
    return true;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  Answer a;
  a.came = client.send(req, res, error);
  if (!a.came) {
    a.failure = httplib::to_string(error);
    return a;
  }
  a.status = res.status;
  a.body = std::move(events);
  // An answer without text (one token that decodes to nothing, say) shows its first text, its
  // whole answer, when it ends.
  a.first_text_s =
      std::isnan(first_text_s)
          ? std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
          : first_text_s;
  return a;
}

// The first "completion_tokens" number of a response body; 0 when there is none.
int64_t completion_tokens_of(const std::string& body) {
  const std::string key = "\"completion_tokens\":";
  const size_t at = body.find(key);
  return at == std::string::npos ? 0 : std::atoll(body.c_str() + at + key.size());
}

// A streamed request on a socket of its own, closed before the answer (wait_for_bytes false:
// right after sending) or after its first bytes arrive. False when the exchange failed.
bool abandon_request(int port, const std::string& body, bool wait_for_bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  const std::string text =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  ok =
      ok && ::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
  if (ok && wait_for_bytes) {
    char buffer[64];
    ok = ::recv(fd, buffer, sizeof buffer, 0) > 0;
  }
  ::close(fd);
  return ok;
}

}  // namespace

LoadResult run_load(const LoadOptions& o) {
  LoadResult result;
  result.requests = o.requests;
  std::atomic<int64_t> next{0}, done{0}, errors{0}, tokens{0};
  std::mutex mutex;  // result.latencies_s, result.first_error
  auto fail = [&](const std::string& what) {
    ++errors;
    std::lock_guard<std::mutex> lock(mutex);
    if (result.first_error.empty()) result.first_error = what;
  };
  auto client_thread = [&] {
    httplib::Client client("127.0.0.1", o.port);
    client.set_keep_alive(true);
    // httplib writes a request's headers and body separately: with Nagle's algorithm the body
    // waits for the server's delayed ACK of the headers (40 ms on Linux).
    client.set_tcp_nodelay(true);
    client.set_connection_timeout(10);
    client.set_read_timeout(600);
    std::vector<double> latencies, first_text;
    for (int64_t i = next++; i < o.requests; i = next++) {
      const LoadKind kind = o.kind_of ? o.kind_of(i) : LoadKind::chat;
      if (kind == LoadKind::abandoned_early || kind == LoadKind::abandoned_stream) {
        // One closed before its answer asks for a long generation: what cancelling saves.
        const bool early = kind == LoadKind::abandoned_early;
        const int64_t max_tokens = early ? std::min<int64_t>(8 * o.max_tokens, 2048) : o.max_tokens;
        if (!abandon_request(o.port, chat_body(i, max_tokens, true), !early))
          fail("request " + std::to_string(i) + ": an abandoned request got no answer");
      } else {
        const bool streamed = kind == LoadKind::streamed_chat;
        const std::string body =
            kind == LoadKind::malformed_json ? "{\"messages\": [oops"
            : kind == LoadKind::invalid_field
                ? R"({"messages":[{"role":"user","content":"x"}],"temperature":7})"
                : chat_body(i, o.mixed_lengths ? 1 + (i * 7919) % o.max_tokens : o.max_tokens,
                            streamed);
        const int want = kind == LoadKind::chat || streamed ? 200 : 400;
        const auto t0 = Clock::now();
        const Answer answer = streamed ? post_streamed(client, body) : post_chat(client, body);
        const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        if (!answer.came) {
          fail("request " + std::to_string(i) + ": " + answer.failure);
        } else if (answer.status != want) {
          fail("request " + std::to_string(i) + ": HTTP " + std::to_string(answer.status) + " " +
               answer.body.substr(0, 200));
        } else if (streamed && answer.body.find("data: [DONE]") == std::string::npos) {
          fail("request " + std::to_string(i) +
               ": a stream without [DONE]: " + answer.body.substr(0, 200));
        } else if (kind == LoadKind::chat || streamed) {
          latencies.push_back(seconds);
          if (streamed) first_text.push_back(answer.first_text_s);
          tokens += completion_tokens_of(answer.body);
        }
      }
      const int64_t n = ++done;
      if (o.on_done) o.on_done(n);
    }
    std::lock_guard<std::mutex> lock(mutex);
    result.latencies_s.insert(result.latencies_s.end(), latencies.begin(), latencies.end());
    result.first_text_s.insert(result.first_text_s.end(), first_text.begin(), first_text.end());
  };
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < o.concurrency; ++t) threads.emplace_back(client_thread);
  for (auto& t : threads) t.join();
  result.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  result.errors = errors;
  result.completion_tokens = tokens;
  return result;
}

double quantile(std::vector<double> samples, double p) {
  if (samples.empty()) return NAN;
  std::sort(samples.begin(), samples.end());
  const double rank = std::ceil(p * static_cast<double>(samples.size()));
  const size_t at = static_cast<size_t>(std::max(1.0, rank)) - 1;
  return samples[std::min(at, samples.size() - 1)];
}

int64_t resident_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;  // in kB
  return 0;
}

}  // namespace rlaif::cli
