// What the tests of `rlaif serve`'s server share: the shipped stories260K model and tokenizer,
// loaded once per suite, a server started in-process on a free loopback port, and an HTTP
// client for it.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>

#include <memory>
#include <string>

#include "io/model_dir.h"
#include "io/openai_server.h"
#include "io/tokenizer.h"
#include "tests/io/io_test_util.h"

namespace rlaif::test {

class ServerFixture : public ::testing::Test {
 public:
  static std::string model_dir() { return data_path("models/stories260K"); }

 protected:
  static void SetUpTestSuite() {
    model_ = std::make_unique<Transformer>(load_model(model_dir()));
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::load_dir(model_dir()));
  }
  static void TearDownTestSuite() {
    model_.reset();
    tokenizer_.reset();
  }
  // Starts a server on a free port (replacing any earlier one) that allows 256 new tokens.
  void serve(ServerOptions options = {}) {
    server_.reset();
    options.host = "127.0.0.1";
    options.port = 0;
    options.model_name = "stories260K";
    options.max_tokens_limit = 256;
    server_ = std::make_unique<OpenAiServer>(*model_, *tokenizer_, options);
    port_ = server_->start();
    ASSERT_GT(port_, 0);
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(5);
    c.set_read_timeout(30);
    return c;
  }
  httplib::Result post(const std::string& path, const std::string& body,
                       const httplib::Headers& headers = {}) const {
    return client().Post(path.c_str(), headers, body, "application/json");
  }

  inline static std::unique_ptr<Transformer> model_;
  inline static std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<OpenAiServer> server_;
  int port_ = 0;
};

// A response body as JSON (a parse error fails the test).
inline rapidjson::Document parse_body(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  EXPECT_FALSE(d.HasParseError()) << body;
  return d;
}

}  // namespace rlaif::test
