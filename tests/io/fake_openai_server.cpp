#include "tests/io/fake_openai_server.h"

#include <httplib.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <sys/socket.h>

#include <algorithm>
#include <stdexcept>

namespace rlaif::test {
namespace {

// The prompt of a request body: the last message's content (chat) or "prompt".
std::string prompt_of(const std::string& body, bool& chat) {
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  chat = false;
  if (doc.HasParseError() || !doc.IsObject()) return "";
  auto messages = doc.FindMember("messages");
  if (messages != doc.MemberEnd() && messages->value.IsArray() && !messages->value.Empty()) {
    chat = true;
    const auto& last = messages->value[messages->value.Size() - 1];
    if (last.IsObject() && last.HasMember("content") && last["content"].IsString()) {
      return last["content"].GetString();
    }
    return "";
  }
  auto prompt = doc.FindMember("prompt");
  return prompt != doc.MemberEnd() && prompt->value.IsString() ? prompt->value.GetString() : "";
}

std::string completion_json(bool chat, const std::string& text, const std::string& finish_reason,
                            int64_t prompt_tokens, bool empty_choices, bool missing_content,
                            bool usage = true) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("id");
  w.String("fake-1");
  w.Key("object");
  w.String(chat ? "chat.completion" : "text_completion");
  w.Key("choices");
  w.StartArray();
  if (!empty_choices) {
    w.StartObject();
    w.Key("index");
    w.Int(0);
    if (chat) {
      w.Key("message");
      w.StartObject();
      w.Key("role");
      w.String("assistant");
      if (!missing_content) {
        w.Key("content");
        w.String(text.c_str());
      }
      w.EndObject();
    } else if (!missing_content) {
      w.Key("text");
      w.String(text.c_str());
    }
    w.Key("finish_reason");
    if (finish_reason.empty()) {
      w.Null();
    } else {
      w.String(finish_reason.c_str());
    }
    w.EndObject();
  }
  w.EndArray();
  if (usage) {
    w.Key("usage");
    w.StartObject();
    w.Key("prompt_tokens");
    w.Int64(prompt_tokens);
    w.Key("completion_tokens");
    w.Int64(static_cast<int64_t>(text.size()));
    w.Key("total_tokens");
    w.Int64(prompt_tokens + static_cast<int64_t>(text.size()));
    w.EndObject();
  }
  w.EndObject();
  return buffer.GetString();
}

}  // namespace

FakeOpenAiServer::FakeOpenAiServer() : server_(std::make_unique<httplib::Server>()) {
  // Enough workers that stalled requests never hold up the others (httplib's default is 8).
  server_->new_task_queue = [] { return new httplib::ThreadPool(32); };
  server_->set_keep_alive_timeout(1);
  // httplib writes headers and body separately; with Nagle on, the body waits for the client's
  // delayed ACK (40 ms a response).
  server_->set_tcp_nodelay(true);
  for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
    server_->Post(path, [this, path](const httplib::Request& req, httplib::Response& res) {
      handle(path, req.body, req.get_header_value("Authorization"), res);
    });
  }
  server_->Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"object":"list","data":[{"id":"fake","object":"model"}]})",
                    "application/json");
  });
  // Debian's libcpp-httplib listens with a backlog of 5: a burst of more simultaneous connects
  // overflows it and the extra clients retry their SYN a second later, which would hide the
  // client's concurrency. Keep the listening socket and listen() again with a real backlog.
  int listen_fd = -1;
  server_->set_socket_options([&listen_fd](int sock) {
    httplib::default_socket_options(sock);
    listen_fd = sock;
  });
  port_ = server_->bind_to_any_port("127.0.0.1");
  server_->set_socket_options(httplib::default_socket_options);  // drop the captured reference
  if (port_ <= 0) throw std::runtime_error("fake OpenAI server: cannot bind 127.0.0.1");
  if (listen_fd < 0 || ::listen(listen_fd, 128) != 0) {
    throw std::runtime_error("fake OpenAI server: cannot raise the listen backlog");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

FakeOpenAiServer::~FakeOpenAiServer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stopping_cv_.notify_all();
  server_->stop();
  thread_.join();
  if (request_log_) std::fclose(request_log_);
}

std::string FakeOpenAiServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
}

void FakeOpenAiServer::script(const std::vector<Reply>& replies) {
  std::lock_guard lock(mutex_);
  script_.insert(script_.end(), replies.begin(), replies.end());
}

void FakeOpenAiServer::set_fallback(const Reply& reply) {
  std::lock_guard lock(mutex_);
  fallback_ = reply;
}

void FakeOpenAiServer::script_for(const std::string& needle, const std::vector<Reply>& replies) {
  std::lock_guard lock(mutex_);
  auto& queue = scripts_for_[needle];
  queue.insert(queue.end(), replies.begin(), replies.end());
}

void FakeOpenAiServer::set_answer(std::function<std::string(const std::string&)> answer) {
  std::lock_guard lock(mutex_);
  answer_ = std::move(answer);
}

void FakeOpenAiServer::set_request_log(const std::string& path) {
  std::lock_guard lock(mutex_);
  if (request_log_) std::fclose(request_log_);
  request_log_ = std::fopen(path.c_str(), "ab");
  if (!request_log_) throw std::runtime_error("fake OpenAI server: cannot open " + path);
}

std::vector<FakeOpenAiServer::Received> FakeOpenAiServer::received() const {
  std::lock_guard lock(mutex_);
  return received_;
}

size_t FakeOpenAiServer::request_count() const {
  std::lock_guard lock(mutex_);
  return received_.size();
}

size_t FakeOpenAiServer::count_body(const std::string& body) const {
  std::lock_guard lock(mutex_);
  return std::count_if(received_.begin(), received_.end(),
                       [&](const Received& r) { return r.body == body; });
}

std::vector<std::string> FakeOpenAiServer::repeated_bodies() const {
  std::lock_guard lock(mutex_);
  std::map<std::string, int> seen;
  std::vector<std::string> repeated;
  for (const Received& r : received_) {
    if (++seen[r.body] == 2) repeated.push_back(r.body);
  }
  return repeated;
}

int FakeOpenAiServer::max_in_flight() const {
  std::lock_guard lock(mutex_);
  return max_in_flight_;
}

Reply FakeOpenAiServer::next_reply(const std::string& body) {
  for (auto& [needle, queue] : scripts_for_) {
    if (!queue.empty() && body.find(needle) != std::string::npos) {
      Reply reply = queue.front();
      queue.pop_front();
      return reply;
    }
  }
  if (script_.empty()) return fallback_;
  Reply reply = script_.front();
  script_.pop_front();
  return reply;
}

void FakeOpenAiServer::sleep_for(double seconds) {
  std::unique_lock lock(mutex_);
  stopping_cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return stopping_; });
}

void FakeOpenAiServer::handle(const std::string& path, const std::string& body,
                              const std::string& authorization, httplib::Response& res) {
  Reply reply;
  std::function<std::string(const std::string&)> answer;
  {
    std::lock_guard lock(mutex_);
    received_.push_back({path, body, authorization, Clock::now()});
    if (request_log_) {
      std::string line = body;
      std::replace(line.begin(), line.end(), '\n', ' ');
      line += '\n';
      std::fwrite(line.data(), 1, line.size(), request_log_);
      std::fflush(request_log_);
    }
    max_in_flight_ = std::max(max_in_flight_, ++in_flight_);
    reply = next_reply(body);
    answer = answer_;
  }
  struct Leave {
    FakeOpenAiServer* self;
    ~Leave() {
      std::lock_guard lock(self->mutex_);
      --self->in_flight_;
    }
  } leave{this};

  if (reply.delay_s > 0) sleep_for(reply.delay_s);
  bool chat = false;
  std::string prompt = prompt_of(body, chat);
  std::string text = answer ? answer(prompt) : "echo: " + prompt;
  auto prompt_tokens = static_cast<int64_t>(prompt.size());
  const char* json = "application/json";
  switch (reply.fault) {
    case Fault::kNone:
    case Fault::kStall:
      res.set_content(completion_json(chat, text, reply.finish_reason, prompt_tokens, false, false,
                                      reply.usage),
                      json);
      return;
    case Fault::k429:
      res.status = 429;
      if (!reply.retry_after.empty()) res.set_header("Retry-After", reply.retry_after);
      res.set_content(
          R"json({"error":{"message":"Rate limit reached (fake server)","type":"requests"}})json",
          json);
      return;
    case Fault::k500:
      res.status = 500;
      res.set_content(R"json({"error":{"message":"The server had an error (fake server)"}})json",
                      json);
      return;
    case Fault::k503:
      res.status = 503;
      res.set_content("Service Unavailable\n(fake server)", "text/plain");
      return;
    case Fault::kDrop: {
      // Promise the whole completion, deliver half, then fail the write: httplib closes the
      // connection and the client sees a truncated transfer.
      std::string full =
          completion_json(chat, text, reply.finish_reason, prompt_tokens, false, false);
      res.set_content_provider(full.size(), json,
                               [full](size_t offset, size_t, httplib::DataSink& sink) {
                                 if (offset > 0) return false;
                                 sink.write(full.data(), full.size() / 2);
                                 return true;
                               });
      return;
    }
    case Fault::kMalformedJson:
      res.set_content(R"json({"choices": [{"message": {"content": "unterminated)json", json);
      return;
    case Fault::kEmptyChoices:
      res.set_content(completion_json(chat, text, reply.finish_reason, prompt_tokens, true, false),
                      json);
      return;
    case Fault::kMissingContent:
      res.set_content(completion_json(chat, text, reply.finish_reason, prompt_tokens, false, true),
                      json);
      return;
    case Fault::k400:
      res.status = 400;
      res.set_content(std::string(R"json({"error":{"message":")json") + kBadRequestMessage +
                          R"json(","type":"invalid_request_error","code":null}})json",
                      json);
      return;
    case Fault::k401EchoingKey: {
      res.status = 401;
      std::string key = authorization.rfind("Bearer ", 0) == 0 ? authorization.substr(7) : "";
      res.set_content(
          R"json({"error":{"message":"Incorrect API key provided: )json" + key + R"json("}})json",
          json);
      return;
    }
  }
}

}  // namespace rlaif::test
