// The LLM client's parts that need no server: SHA-256 (the cache key), request bodies, the retry
// rules, Retry-After parsing, response validation and error messages.
#include <gtest/gtest.h>

#include <ctime>
#include <random>
#include <string>

#include "io/api_response.h"
#include "io/llm_client.h"
#include "io/retry_policy.h"
#include "io/sha256.h"

namespace rlaif {
namespace {

TEST(Sha256, KnownVectors) {
  // FIPS 180-2 examples.
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjkl"
                       "mnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PaddingBoundaries) {
  // Lengths around the 55/56-byte padding split and the 64-byte block (from sha256sum).
  const std::pair<size_t, const char*> cases[] = {
      {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
      {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
      {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
      {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
      {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
      {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
      {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
  };
  for (auto [n, hex] : cases) EXPECT_EQ(sha256_hex(std::string(n, 'a')), hex) << n << " bytes";
}

TEST(Sha256, IncrementalUpdatesMatchOneShot) {
  std::mt19937 rng(7);
  std::string data(1000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (int trial = 0; trial < 20; ++trial) {
    Sha256 hash;
    for (size_t at = 0; at < data.size();) {
      size_t n = std::min<size_t>(rng() % 150, data.size() - at);
      hash.update(std::string_view(data).substr(at, n));
      at += n;
    }
    std::string hex;
    for (uint8_t b : hash.finish()) {
      char buf[3];
      std::snprintf(buf, sizeof buf, "%02x", b);
      hex += buf;
    }
    EXPECT_EQ(hex, sha256_hex(data));
  }
}

TEST(RequestBody, FixedFieldOrderAndStableKey) {
  CompletionRequest chat;
  chat.messages = {{"system", "Be brief."}, {"user", "Say \"hi\"\n"}};
  chat.temperature = 0.7;
  chat.max_tokens = 64;
  chat.item = "not part of the body";
  EXPECT_EQ(request_body(chat, "gpt-x"),
            R"({"model":"gpt-x","messages":[{"role":"system","content":"Be brief."},)"
            R"({"role":"user","content":"Say \"hi\"\n"}],"temperature":0.7,"max_tokens":64})");
  chat.seed = 42;
  EXPECT_EQ(request_body(chat, "gpt-x"),
            R"({"model":"gpt-x","messages":[{"role":"system","content":"Be brief."},)"
            R"({"role":"user","content":"Say \"hi\"\n"}],"temperature":0.7,"max_tokens":64,)"
            R"("seed":42})");

  CompletionRequest plain;
  plain.prompt = "Once upon";
  EXPECT_EQ(request_body(plain, "m"),
            R"({"model":"m","prompt":"Once upon","temperature":0.0,"max_tokens":512})");

  // The key is the body's SHA-256: equal for equal requests, different for any change.
  std::string key = request_key(request_body(plain, "m"));
  EXPECT_EQ(key.size(), 64u);
  EXPECT_EQ(key, sha256_hex(request_body(plain, "m")));
  CompletionRequest same = plain;
  same.item = "another name";
  EXPECT_EQ(request_key(request_body(same, "m")), key);
  CompletionRequest warmer = plain;
  warmer.temperature = 0.1;
  EXPECT_NE(request_key(request_body(warmer, "m")), key);
  EXPECT_NE(request_key(request_body(plain, "m2")), key);
}

TEST(RetryPolicy, WhichStatusesAndTransportErrorsAreRetried) {
  for (long s : {429L, 408L, 500L, 502L, 503L, 504L, 599L})
    EXPECT_TRUE(is_retryable_status(s)) << s;
  for (long s : {200L, 400L, 401L, 403L, 404L, 422L, 501L}) {
    EXPECT_FALSE(is_retryable_status(s)) << s;
  }
  // CURLE_COULDNT_CONNECT 7, OPERATION_TIMEDOUT 28, PARTIAL_FILE 18, GOT_NOTHING 52,
  // SEND_ERROR 55, RECV_ERROR 56; not: UNSUPPORTED_PROTOCOL 1, URL_MALFORMAT 3,
  // PEER_FAILED_VERIFICATION 60.
  for (int code : {7, 28, 18, 52, 55, 56}) EXPECT_TRUE(is_retryable_transport_error(code)) << code;
  for (int code : {1, 3, 60}) EXPECT_FALSE(is_retryable_transport_error(code)) << code;
}

TEST(RetryPolicy, ExponentialBackoffWithJitterAndCap) {
  std::mt19937_64 rng(1);
  BackoffOptions options{1.0, 60};
  for (int retry = 1; retry <= 8; ++retry) {
    double base = std::ldexp(1.0, retry - 1);
    double lo = 1e9, hi = 0;
    for (int i = 0; i < 200; ++i) {
      double d = retry_delay_s(options, retry, std::nullopt, rng);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
      ASSERT_GE(d, std::min(0.5 * base, 60.0)) << "retry " << retry;
      ASSERT_LE(d, std::min(1.5 * base, 60.0)) << "retry " << retry;
    }
    if (1.5 * base <= 60) {
      // The jitter spreads the delays over most of [0.5, 1.5) x base.
      EXPECT_LT(lo, 0.6 * base) << "retry " << retry;
      EXPECT_GT(hi, 1.4 * base) << "retry " << retry;
    }
  }
  EXPECT_EQ(retry_delay_s(options, 20, std::nullopt, rng), 60);
  // A server's Retry-After replaces the backoff, capped at max_backoff_s.
  EXPECT_EQ(retry_delay_s(options, 1, 7.0, rng), 7.0);
  EXPECT_EQ(retry_delay_s(options, 1, 3600.0, rng), 60);
  EXPECT_EQ(retry_delay_s({0.01, 0.05}, 1, 1.0, rng), 0.05);
}

TEST(RetryPolicy, ParsesRetryAfter) {
  std::time_t now = std::time(nullptr);
  EXPECT_EQ(parse_retry_after("1", now), 1.0);
  EXPECT_EQ(parse_retry_after(" 120\r\n", now), 120.0);
  EXPECT_EQ(parse_retry_after("0.25", now), 0.25);
  EXPECT_EQ(parse_retry_after("", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("soon", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("1x", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("-5", now), std::nullopt);
  // The HTTP-date form, relative to `now`; a date in the past means at once.
  char date[64];
  std::time_t later = now + 30;
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", std::gmtime(&later));
  EXPECT_EQ(parse_retry_after(date, now), 30.0) << date;
  std::time_t earlier = now - 30;
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", std::gmtime(&earlier));
  EXPECT_EQ(parse_retry_after(date, now), 0.0) << date;
}

TEST(ApiResponse, ReadsChatAndCompletionResponses) {
  ParsedCompletion p;
  ASSERT_EQ(parse_completion_response(
                R"({"choices":[{"message":{"role":"assistant","content":"Hi."},)"
                R"("finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3}})",
                true, p),
            "");
  EXPECT_EQ(p.text, "Hi.");
  EXPECT_EQ(p.finish_reason, "stop");
  EXPECT_EQ(p.prompt_tokens, 12);
  EXPECT_EQ(p.completion_tokens, 3);

  ASSERT_EQ(
      parse_completion_response(R"({"choices":[{"text":"abc","finish_reason":null}]})", false, p),
      "");
  EXPECT_EQ(p.text, "abc");
  EXPECT_EQ(p.finish_reason, "");
  EXPECT_EQ(p.prompt_tokens, 0);  // no usage: counted as 0
  EXPECT_EQ(p.completion_tokens, 0);
}

TEST(ApiResponse, RejectsMalformedResponses) {
  const std::tuple<bool, const char*, const char*> cases[] = {
      {true, R"({"choices": [)", "invalid JSON"},
      {true, R"([1, 2])", "not a JSON object"},
      {true, R"({"id": "x"})", "no \"choices\""},
      {true, R"({"choices": {}})", "\"choices\" is not an array"},
      {true, R"({"choices": []})", "\"choices\" is empty"},
      {true, R"({"choices": [3]})", "choices[0] is not an object"},
      {true, R"({"choices": [{"text": "x", "finish_reason": "stop"}]})", "choices[0].message"},
      {true, R"({"choices": [{"message": {"content": null}, "finish_reason": "stop"}]})",
       "choices[0].message.content"},
      {true, R"({"choices": [{"message": {"content": 5}, "finish_reason": "stop"}]})",
       "choices[0].message.content"},
      {false, R"({"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}]})",
       "choices[0].text"},
      {false, R"({"choices": [{"text": "x"}]})", "finish_reason is missing"},
      {false, R"({"choices": [{"text": "x", "finish_reason": 1}]})", "neither a string nor null"},
      {false, R"({"choices": [{"text": "x", "finish_reason": "stop"}], "usage": 3})",
       "\"usage\" is not an object"},
      {false,
       R"({"choices": [{"text": "x", "finish_reason": "stop"}], "usage": {"prompt_tokens": "9"}})",
       "usage.prompt_tokens"},
      {false,
       R"({"choices": [{"text": "x", "finish_reason": "stop"}],)"
       R"( "usage": {"completion_tokens": -1}})",
       "usage.completion_tokens"},
  };
  for (auto [chat, body, expected] : cases) {
    ParsedCompletion p;
    p.text = "untouched";
    std::string error = parse_completion_response(body, chat, p);
    EXPECT_NE(error.find(expected), std::string::npos) << body << " -> " << error;
    EXPECT_EQ(p.text, "untouched") << body;
  }
}

TEST(ApiResponse, ErrorMessages) {
  EXPECT_EQ(api_error_message(R"({"error":{"message":"Invalid model","type":"x"}})"),
            "Invalid model");
  EXPECT_EQ(api_error_message(R"({"error":"model not loaded"})"), "model not loaded");
  EXPECT_EQ(api_error_message(R"({"object":"error","message":"vLLM says no"})"), "vLLM says no");
  EXPECT_EQ(api_error_message("Bad Gateway\n<html>"), "Bad Gateway <html>");
  EXPECT_EQ(api_error_message(""), "(empty body)");
  std::string long_body(500, 'x');
  // Built in place: GCC 12 at -O1 warns falsely (-Warray-bounds) on `std::string(200, 'x') + "..."`.
  std::string expected(200, 'x');
  expected += "...";
  EXPECT_EQ(api_error_message(long_body), expected);
}

TEST(LoopbackUrl, RecognisesLoopbackHostsOnly) {
  for (const char* url : {"http://127.0.0.1:8080/v1", "http://localhost/v1", "HTTP://LOCALHOST:1",
                          "http://127.1.2.3/", "http://[::1]:8000/v1", "https://127.0.0.1/v1"}) {
    EXPECT_TRUE(is_loopback_url(url)) << url;
  }
  for (const char* url : {"https://api.openai.com/v1", "http://10.0.0.1/v1",
                          "http://127.0.0.1.nip.io/v1", "http://localhost.example.com/",
                          "http://127.0.0.1@evil.example/v1", "http://[::2]/", "not a url", ""}) {
    EXPECT_FALSE(is_loopback_url(url)) << url;
  }
}

}  // namespace
}  // namespace rlaif
