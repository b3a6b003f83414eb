// `rlaif serve`'s server (io/openai_server.h), in-process on an ephemeral loopback port with the
// shipped stories260K model, spoken to over real HTTP with httplib's client. Outputs are checked
// against model/generate.h called directly, and against llama2.c's golden greedy text.
#include "io/openai_server.h"

#include <httplib.h>
#include <rapidjson/document.h>

#include <chrono>
#include <memory>
#include <thread>

#include "io/chat_template.h"
#include "io/llm_client.h"
#include "io/model_dir.h"
#include "io/tokenizer.h"
#include "model/generate.h"
#include "tests/io/io_test_util.h"
#include "tests/io/server_test_fixture.h"
#include "tests/io/sse_events.h"

namespace rlaif {
namespace {

class OpenAiServerTest : public test::ServerFixture {
 protected:
  // Bodies up to 100 kB, so that the size limit is quick to test.
  void serve(ServerOptions options = {}) {
    options.max_body_bytes = 100000;
    ServerFixture::serve(options);
  }
  void SetUp() override { serve(); }

  // Direct generation of `text` (BOS + its tokens), as the server should do it.
  static Generation direct(const std::string& text, int64_t max_new, SamplingOptions sampling = {},
                           uint64_t stream = 0) {
    std::vector<int32_t> ids = {tokenizer_->bos_id()};
    for (int32_t t : tokenizer_->encode(text)) ids.push_back(t);
    GenerationOptions o;
    o.max_new_tokens = max_new;
    o.sampling = sampling;
    o.eos_ids = {model_->config().eos_token_id};
    return generate(*model_, {ids}, o, {stream})[0];
  }
  static SamplingOptions greedy() {
    SamplingOptions s;
    s.temperature = 0;
    return s;
  }
  static std::string text_of(const Generation& g) {
    std::vector<int32_t> ids = g.tokens;
    if (g.stopped_at_eos) ids.pop_back();
    return tokenizer_->decode(ids);
  }

  void wait_in_flight(int64_t n) const {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (server_->stats().in_flight < n && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_EQ(server_->stats().in_flight, n);
  }
  // Waits up to 10 s for n requests to be queued (in flight is counted when a handler starts;
  // batches are formed from what is queued).
  void wait_queued(int64_t n) const {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (server_->stats().queued < n && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_EQ(server_->stats().queued, n);
  }
};

rapidjson::Document parse(const std::string& body) {
  return test::parse_body(body);
}

// A chat request body with one user message (JSON-escaped by hand: the tests' texts need none).
std::string chat_body(const std::string& user, const std::string& extra) {
  return R"({"model":"whatever","messages":[{"role":"user","content":")" + user + R"("}])" +
         (extra.empty() ? "" : "," + extra) + "}";
}

std::string content_of(const rapidjson::Document& d) {
  return d["choices"][0]["message"]["content"].GetString();
}

TEST_F(OpenAiServerTest, ListsTheModel) {
  auto res = client().Get("/v1/models");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  auto d = parse(res->body);
  EXPECT_STREQ(d["object"].GetString(), "list");
  ASSERT_EQ(d["data"].Size(), 1u);
  EXPECT_STREQ(d["data"][0]["id"].GetString(), "stories260K");
  EXPECT_STREQ(d["data"][0]["object"].GetString(), "model");
  res = client().Get("/v1/models/stories260K");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res = client().Get("/v1/models/gpt-4");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(OpenAiServerTest, GreedyChatEqualsDirectGeneration) {
  const std::string user = "Tell me a story about a cat.";
  auto res = post("/v1/chat/completions", chat_body(user, R"("temperature":0,"max_tokens":24)"));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto d = parse(res->body);
  Generation g = direct(ChatTemplate().apply(user), 24, greedy());
  EXPECT_EQ(content_of(d), text_of(g));
  EXPECT_FALSE(content_of(d).empty());
  EXPECT_STREQ(d["object"].GetString(), "chat.completion");
  EXPECT_STREQ(d["model"].GetString(), "stories260K");  // the served name, whatever was asked
  EXPECT_EQ(std::string(d["id"].GetString()).rfind("chatcmpl-", 0), 0u);
  EXPECT_STREQ(d["choices"][0]["message"]["role"].GetString(), "assistant");
  EXPECT_STREQ(d["choices"][0]["finish_reason"].GetString(), g.stopped_at_eos ? "stop" : "length");
  const auto& usage = d["usage"];
  const int64_t prompt_tokens =
      1 + static_cast<int64_t>(tokenizer_->encode(ChatTemplate().apply(user)).size());
  EXPECT_EQ(usage["prompt_tokens"].GetInt64(), prompt_tokens);
  EXPECT_EQ(usage["completion_tokens"].GetInt64(), static_cast<int64_t>(g.tokens.size()));
  EXPECT_EQ(usage["total_tokens"].GetInt64(),
            prompt_tokens + static_cast<int64_t>(g.tokens.size()));
}

TEST_F(OpenAiServerTest, SeededSamplingIsReproducibleAndEqualsDirectGeneration) {
  const std::string user = "Tell me a story about a dog.";
  const std::string body =
      chat_body(user, R"("temperature":0.9,"top_p":0.95,"seed":42,"max_tokens":20)");
  auto a = post("/v1/chat/completions", body);
  auto b = post("/v1/chat/completions", body);
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->status, 200) << a->body;
  SamplingOptions s;
  s.temperature = 0.9f;
  s.top_p = 0.95f;
  s.seed = 42;
  EXPECT_EQ(content_of(parse(a->body)), text_of(direct(ChatTemplate().apply(user), 20, s)));
  EXPECT_EQ(a->body.substr(a->body.find("\"choices\"")),
            b->body.substr(b->body.find("\"choices\"")));
}

TEST_F(OpenAiServerTest, CompletionFromBosMatchesLlama2cGolden) {
  // The same 200 greedy tokens tests/cli/golden_generate.sh checks `rlaif generate` against.
  auto res = post("/v1/completions", R"({"prompt":"","temperature":0,"max_tokens":200})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto d = parse(res->body);
  EXPECT_STREQ(d["object"].GetString(), "text_completion");
  EXPECT_EQ(
      std::string(d["choices"][0]["text"].GetString()),
      test::read_bytes(test::source_dir() + "/tests/data/stories260K_expected_greedy_200.txt"));
  EXPECT_STREQ(d["choices"][0]["finish_reason"].GetString(), "length");
  EXPECT_EQ(d["usage"]["completion_tokens"].GetInt64(), 200);
  EXPECT_EQ(d["usage"]["prompt_tokens"].GetInt64(), 1);
}

TEST_F(OpenAiServerTest, CompletionContinuesThePromptWithItsSpace) {
  const std::string prompt = "Once upon a";
  auto res = post("/v1/completions",
                  R"({"prompt":[")" + prompt + R"("],"temperature":0,"max_tokens":12})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const std::string text = parse(res->body)["choices"][0]["text"].GetString();
  Generation g = direct(prompt, 12, greedy());
  std::vector<int32_t> all = {tokenizer_->bos_id()};
  for (int32_t t : tokenizer_->encode(prompt)) all.push_back(t);
  all.insert(all.end(), g.tokens.begin(), g.tokens.end() - (g.stopped_at_eos ? 1 : 0));
  EXPECT_EQ(prompt + text, tokenizer_->decode(all));
  EXPECT_EQ(text.substr(0, 1), " ");  // "Once upon a" + " time", not "a" + "time"
}

TEST_F(OpenAiServerTest, StreamedDeltasConcatenateToTheText) {
  const std::string user = "Write about the sun.";
  auto plain = post("/v1/chat/completions", chat_body(user, R"("temperature":0,"max_tokens":40)"));
  auto streamed = post("/v1/chat/completions",
                       chat_body(user, R"("temperature":0,"max_tokens":40,"stream":true,)"
                                       R"("stream_options":{"include_usage":true})"));
  ASSERT_TRUE(plain && streamed);
  ASSERT_EQ(streamed->status, 200) << streamed->body;
  EXPECT_EQ(streamed->get_header_value("Content-Type"), "text/event-stream");
  bool done = false;
  std::vector<std::string> events = test::sse_data(streamed->body, done);
  EXPECT_TRUE(done);
  ASSERT_GE(events.size(), 4u);  // role, deltas..., finish, usage
  std::string text, finish;
  int deltas = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    auto e = parse(events[i]);
    EXPECT_STREQ(e["object"].GetString(), "chat.completion.chunk");
    if (i + 1 == events.size()) {  // the usage chunk
      EXPECT_EQ(e["choices"].Size(), 0u);
      EXPECT_EQ(e["usage"]["completion_tokens"].GetInt64(),
                parse(plain->body)["usage"]["completion_tokens"].GetInt64());
      continue;
    }
    const auto& choice = e["choices"][0];
    if (i == 0) {
      EXPECT_STREQ(choice["delta"]["role"].GetString(), "assistant");
    }
    if (choice["delta"].HasMember("content")) {
      text += choice["delta"]["content"].GetString();
      ++deltas;
    }
    if (!choice["finish_reason"].IsNull()) finish = choice["finish_reason"].GetString();
  }
  auto p = parse(plain->body);
  EXPECT_EQ(text, content_of(p));
  // Pieces as generated: as many as the writer found new text; how many depends on timing
  // (OpenAiServerLifecycle holds generation midway to see text arrive before the end).
  EXPECT_GE(deltas, 1);
  EXPECT_EQ(finish, p["choices"][0]["finish_reason"].GetString());

  // Completions stream "text" pieces.
  auto c =
      post("/v1/completions", R"({"prompt":"Once","temperature":0,"max_tokens":15,"stream":true})");
  auto cp = post("/v1/completions", R"({"prompt":"Once","temperature":0,"max_tokens":15})");
  ASSERT_TRUE(c && cp);
  events = test::sse_data(c->body, done);
  EXPECT_TRUE(done);
  text.clear();
  for (const std::string& e : events) text += parse(e)["choices"][0]["text"].GetString();
  EXPECT_EQ(text, parse(cp->body)["choices"][0]["text"].GetString());
}

TEST_F(OpenAiServerTest, StopStringsCutTheText) {
  const std::string user = "Tell me a story.";
  auto full_res =
      post("/v1/chat/completions", chat_body(user, R"("temperature":0,"max_tokens":48)"));
  ASSERT_TRUE(full_res);
  const std::string full = content_of(parse(full_res->body));
  ASSERT_GT(full.size(), 30u);
  const std::string stop = full.substr(20, 4);
  const size_t at = full.find(stop);
  for (bool stream : {false, true}) {
    auto res = post("/v1/chat/completions",
                    chat_body(user, R"("temperature":0,"max_tokens":48,"stop":["zzqq",")" + stop +
                                        R"("],"stream":)" + (stream ? "true" : "false")));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    std::string text, finish;
    if (stream) {
      bool done = false;
      for (const std::string& e : test::sse_data(res->body, done)) {
        auto d = parse(e);
        const auto& ch = d["choices"][0];
        if (ch["delta"].HasMember("content")) text += ch["delta"]["content"].GetString();
        if (!ch["finish_reason"].IsNull()) finish = ch["finish_reason"].GetString();
      }
    } else {
      auto d = parse(res->body);
      text = content_of(d);
      finish = d["choices"][0]["finish_reason"].GetString();
      EXPECT_LT(d["usage"]["completion_tokens"].GetInt64(),
                parse(full_res->body)["usage"]["completion_tokens"].GetInt64());
    }
    EXPECT_EQ(text, full.substr(0, at)) << "stream " << stream;
    EXPECT_EQ(finish, "stop");
  }
  // A single string works too.
  auto res =
      post("/v1/completions", R"({"prompt":"Once","temperature":0,"max_tokens":30,"stop":"."})");
  ASSERT_TRUE(res);
  std::string text = parse(res->body)["choices"][0]["text"].GetString();
  EXPECT_EQ(text.find('.'), std::string::npos) << text;
}

TEST_F(OpenAiServerTest, MultiTurnChatRendersEveryTurn) {
  // system + user, assistant, user: one prompt in the template's dialogue format.
  auto res = post("/v1/chat/completions",
                  R"({"messages":[{"role":"system","content":"Be brief."},)"
                  R"({"role":"user","content":"Hi."},{"role":"assistant","content":"Hello."},)"
                  R"({"role":"user","content":[{"type":"text","text":"A story?"}]}],)"
                  R"("temperature":0,"max_tokens":10})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const std::string prompt =
      "Human: Be brief.\n\nHi.\n\nAssistant: Hello.\n\nHuman: A story?\n\nAssistant: ";
  EXPECT_EQ(content_of(parse(res->body)), text_of(direct(prompt, 10, greedy())));
}

struct BadRequest {
  const char* method;
  const char* path;
  std::string body;
  int status;
  const char* param;  // expected "param", or nullptr for null
};

TEST_F(OpenAiServerTest, MalformedRequestsGetJsonErrorsAndTheServerCarriesOn) {
  const std::string chat = "/v1/chat/completions", comp = "/v1/completions";
  std::string long_prompt;
  for (int i = 0; i < 600; ++i) long_prompt += "cat ";
  const std::vector<BadRequest> cases = {
      {"POST", chat.c_str(), "this is not json", 400, nullptr},
      {"POST", chat.c_str(), "[1, 2]", 400, nullptr},
      {"POST", chat.c_str(), "{}", 400, "messages"},
      {"POST", chat.c_str(), R"({"messages":"hi"})", 400, "messages"},
      {"POST", chat.c_str(), R"({"messages":[]})", 400, "messages"},
      {"POST", chat.c_str(), R"({"messages":[{"role":"robot","content":"x"}]})", 400,
       "messages[0].role"},
      {"POST", chat.c_str(), R"({"messages":[{"role":"user","content":5}]})", 400,
       "messages[0].content"},
      {"POST", chat.c_str(), R"({"messages":[{"role":"system","content":"x"}]})", 400, "messages"},
      {"POST", chat.c_str(), chat_body("x", R"("temperature":"hot")"), 400, "temperature"},
      {"POST", chat.c_str(), chat_body("x", R"("temperature":3)"), 400, "temperature"},
      {"POST", chat.c_str(), chat_body("x", R"("top_p":0)"), 400, "top_p"},
      {"POST", chat.c_str(), chat_body("x", R"("max_tokens":0)"), 400, "max_tokens"},
      {"POST", chat.c_str(), chat_body("x", R"("max_tokens":2.5)"), 400, "max_tokens"},
      {"POST", chat.c_str(), chat_body("x", R"("max_tokens":100000)"), 400, "max_tokens"},
      {"POST", chat.c_str(), chat_body("x", R"("n":2)"), 400, "n"},
      {"POST", chat.c_str(), chat_body("x", R"("stop":5)"), 400, "stop"},
      {"POST", chat.c_str(), chat_body("x", R"("stop":[""])"), 400, "stop"},
      {"POST", chat.c_str(), chat_body("x", R"("stream":"yes")"), 400, "stream"},
      {"POST", chat.c_str(), chat_body("x", R"("seed":"abc")"), 400, "seed"},
      {"POST", chat.c_str(), chat_body("x", R"("logprobs":true)"), 400, "logprobs"},
      {"POST", comp.c_str(), R"({"model":"m"})", 400, "prompt"},
      {"POST", comp.c_str(), R"({"prompt":[1,2,3]})", 400, "prompt"},
      {"POST", comp.c_str(), R"({"prompt":")" + long_prompt + R"("})", 400, "prompt"},
      {"POST", comp.c_str(), R"({"prompt":")" + std::string(150000, 'a') + R"("})", 413, nullptr},
      {"GET", "/v1/nothing", "", 404, nullptr},
      {"GET", "/v1/models/", "", 404, nullptr},
      {"POST", "/v1/embeddings", "{}", 404, nullptr},
      {"GET", chat.c_str(), "", 405, nullptr},
      {"DELETE", "/v1/models", "", 405, nullptr},
      {"PUT", comp.c_str(), "{}", 405, nullptr},
  };
  for (const BadRequest& c : cases) {
    SCOPED_TRACE(std::string(c.method) + " " + c.path + " " + c.body.substr(0, 80));
    httplib::Client cl = client();
    httplib::Result res = std::string(c.method) == "GET"      ? cl.Get(c.path)
                          : std::string(c.method) == "DELETE" ? cl.Delete(c.path)
                          : std::string(c.method) == "PUT"
                              ? cl.Put(c.path, c.body, "application/json")
                              : cl.Post(c.path, c.body, "application/json");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, c.status) << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    auto d = parse(res->body);
    ASSERT_TRUE(d.IsObject() && d.HasMember("error") && d["error"].IsObject()) << res->body;
    const auto& e = d["error"];
    ASSERT_TRUE(e.HasMember("message") && e["message"].IsString()) << res->body;
    EXPECT_GT(e["message"].GetStringLength(), 5u);
    EXPECT_STREQ(e["type"].GetString(), "invalid_request_error");
    ASSERT_TRUE(e.HasMember("param") && e.HasMember("code")) << res->body;
    if (c.param)
      EXPECT_STREQ(e["param"].IsString() ? e["param"].GetString() : "(null)", c.param);
    else
      EXPECT_TRUE(e["param"].IsNull()) << res->body;
  }
  // The context overflow carries OpenAI's code.
  auto res = post(comp, R"({"prompt":")" + long_prompt + R"("})");
  ASSERT_TRUE(res);
  EXPECT_STREQ(parse(res->body)["error"]["code"].GetString(), "context_length_exceeded");
  // Still serving.
  res = post(chat, chat_body("Hello", R"("temperature":0,"max_tokens":4)"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(client().Get("/v1/models")->status, 200);
}

TEST_F(OpenAiServerTest, ABurstIsBatchedWithoutChangingAnyOutput) {
  const std::vector<std::string> users = {"Hi.", "Tell me a story about a big red ball.",
                                          "What did Lily see in the park?", "Sing."};
  // 24 greedy requests (two max_tokens) and 8 sampled with one seed: 32 in all.
  auto body_of = [&](int i) {
    const std::string& u = users[static_cast<size_t>(i) % users.size()];
    if (i < 24)
      return chat_body(u, std::string(R"("temperature":0,"max_tokens":)") + (i % 3 ? "16" : "9"));
    return chat_body(u, R"("temperature":1.0,"seed":7,"max_tokens":16)");
  };
  std::vector<std::string> alone(32);
  for (int i = 0; i < 32; ++i) {
    auto res = post("/v1/chat/completions", body_of(i));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    alone[static_cast<size_t>(i)] = content_of(parse(res->body));
  }
  const ServerStats before = server_->stats();
  EXPECT_EQ(before.largest_batch, 1);

  server_->pause_generation(true);  // let all 32 queue up, so the batches are surely formed
  std::vector<std::string> together(32);
  std::vector<int> status(32, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < 32; ++i)
    threads.emplace_back([&, i] {
      auto res = post("/v1/chat/completions", body_of(i));
      if (!res) {
        ADD_FAILURE() << "request " << i << ": " << httplib::to_string(res.error());
        return;
      }
      status[static_cast<size_t>(i)] = res->status;
      if (res->status == 200) together[static_cast<size_t>(i)] = content_of(parse(res->body));
    });
  wait_in_flight(32);
  wait_queued(32);
  server_->pause_generation(false);
  for (auto& t : threads) t.join();
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(status[static_cast<size_t>(i)], 200) << i;
    EXPECT_EQ(together[static_cast<size_t>(i)], alone[static_cast<size_t>(i)]) << "request " << i;
  }
  const ServerStats after = server_->stats();
  EXPECT_EQ(after.requests - before.requests, 32);
  EXPECT_EQ(after.largest_batch, 16);  // --max-batch
  // 24 greedy: 16, and the other 8 take the rows of the first to end (the 9-token ones, then
  // the 16-token ones); 8 sampled with one seed: a batch of their own. Two batches in all.
  EXPECT_EQ(after.batches - before.batches, 2);
  EXPECT_EQ(after.joined - before.joined, 8);
}

// Sampled requests with different seeds share one batch (each row draws from its own seed), and
// each gets the answer it gets alone.
TEST_F(OpenAiServerTest, RequestsWithDifferentSeedsShareABatch) {
  auto body_of = [](int i) {
    return std::string(R"({"prompt":"Once upon a time","temperature":1.0,"max_tokens":12,)") +
           R"("seed":)" + std::to_string(100 + i) + "}";
  };
  std::vector<std::string> alone(4);
  for (int i = 0; i < 4; ++i) {
    auto res = post("/v1/completions", body_of(i));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    alone[static_cast<size_t>(i)] = parse(res->body)["choices"][0]["text"].GetString();
  }
  EXPECT_NE(alone[0], alone[1]);  // the seeds matter
  const ServerStats before = server_->stats();
  server_->pause_generation(true);
  std::vector<std::string> together(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      auto res = post("/v1/completions", body_of(i));
      if (res && res->status == 200)
        together[static_cast<size_t>(i)] = parse(res->body)["choices"][0]["text"].GetString();
    });
  wait_queued(4);
  server_->pause_generation(false);
  for (auto& t : threads) t.join();
  EXPECT_EQ(together, alone);
  EXPECT_EQ(server_->stats().batches - before.batches, 1);
  EXPECT_EQ(server_->stats().largest_batch, 4);
}

TEST_F(OpenAiServerTest, TooManyConcurrentRequestsGet429) {
  ServerOptions o;
  o.max_concurrent = 2;
  serve(o);
  server_->pause_generation(true);
  const std::string body = chat_body("Hi.", R"("temperature":0,"max_tokens":4)");
  std::vector<int> status(2, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&, i] {
      auto res = post("/v1/chat/completions", body);
      if (res) status[static_cast<size_t>(i)] = res->status;
    });
  wait_in_flight(2);
  auto res = post("/v1/chat/completions", body);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429);
  EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  auto d = parse(res->body);
  EXPECT_STREQ(d["error"]["type"].GetString(), "rate_limit_error");
  EXPECT_EQ(client().Get("/v1/models")->status, 200);  // GETs are not limited
  server_->pause_generation(false);
  for (auto& t : threads) t.join();
  EXPECT_EQ(status, std::vector<int>({200, 200}));
  EXPECT_EQ(post("/v1/chat/completions", body)->status, 200);
}

TEST_F(OpenAiServerTest, StoppingAnswersQueuedRequestsWith503) {
  server_->pause_generation(true);
  int status = 0;
  std::string body;
  std::thread waiting([&] {
    auto res = post("/v1/chat/completions", chat_body("Hi.", R"("max_tokens":4)"));
    if (!res) return;
    status = res->status;
    body = res->body;
  });
  wait_in_flight(1);
  server_->stop();
  waiting.join();
  EXPECT_EQ(status, 503);
  EXPECT_NE(body.find("shutting down"), std::string::npos) << body;
  EXPECT_FALSE(client().Get("/v1/models"));  // not listening after stop()
  server_->stop();                           // a second stop is harmless
}

TEST(OpenAiServerOptions, BadOptionsAreErrorsNamingTheFlag) {
  Transformer model = load_model(test::ServerFixture::model_dir());
  Tokenizer tok = Tokenizer::load_dir(test::ServerFixture::model_dir());
  ServerOptions o;
  o.max_batch = 0;
  EXPECT_NE(test::error_of([&] { OpenAiServer s(model, tok, o); }).find("--max-batch"),
            std::string::npos);
  // A port already taken.
  ServerOptions a;
  a.port = 0;
  OpenAiServer first(model, tok, a);
  ServerOptions b;
  b.port = first.start();
  OpenAiServer second(model, tok, b);
  EXPECT_NE(test::error_of([&] { second.start(); }).find("--port"), std::string::npos);
}

TEST_F(OpenAiServerTest, AnswersTheProjectsOwnClient) {
  // The critic/teacher pipeline offline: io/llm_client.h against `rlaif serve`, concurrently.
  ClientOptions co;
  co.api_base = "http://127.0.0.1:" + std::to_string(port_) + "/v1";
  co.model = "stories260K";
  co.concurrency = 8;
  co.timeout_s = 30;
  LlmClient client(co);
  std::vector<CompletionRequest> requests;
  for (int i = 0; i < 12; ++i) {
    CompletionRequest r;
    const std::string u = "Tell me story number " + std::to_string(i) + ".";
    if (i % 4 == 3)
      r.prompt = u;  // /v1/completions
    else
      r.messages = {{"user", u}};
    r.temperature = 0;
    r.max_tokens = 12;
    r.item = "request " + std::to_string(i);
    requests.push_back(r);
  }
  std::vector<CompletionResult> results = client.complete_all(requests);
  ASSERT_EQ(results.size(), requests.size());
  int64_t completion_tokens = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const CompletionResult& r = results[i];
    ASSERT_TRUE(r.ok) << r.error;
    const bool chat = !requests[i].messages.empty();
    const std::string u = chat ? requests[i].messages[0].content : requests[i].prompt;
    Generation g = direct(chat ? ChatTemplate().apply(u) : u, 12, greedy());
    if (chat) {
      EXPECT_EQ(r.text, text_of(g)) << i;
    }
    EXPECT_EQ(r.completion_tokens, static_cast<int64_t>(g.tokens.size())) << i;
    EXPECT_EQ(r.finish_reason, g.stopped_at_eos ? "stop" : "length");
    completion_tokens += r.completion_tokens;
  }
  EXPECT_EQ(client.usage().completion_tokens, completion_tokens);
  EXPECT_EQ(server_->stats().requests, 12);  // all distinct: the client sent each once
}

}  // namespace
}  // namespace rlaif
