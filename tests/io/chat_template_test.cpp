// Chat templates: the seed paper's default, custom templates and their errors.
#include "io/chat_template.h"

#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

using test::error_of;

TEST(ChatTemplate, DefaultIsHumanAssistant) {
  ChatTemplate t;
  EXPECT_EQ(t.apply("What is 2+2?"), "Human: What is 2+2?\n\nAssistant: ");
  EXPECT_EQ(t.text(), "Human: {prompt}\n\nAssistant: ");
  EXPECT_EQ(t.apply(""), "Human: \n\nAssistant: ");
}

TEST(ChatTemplate, CustomTemplate) {
  ChatTemplate t("<|user|>\n{prompt}</s>\n<|assistant|>\n");
  EXPECT_EQ(t.apply("hi"), "<|user|>\nhi</s>\n<|assistant|>\n");
  EXPECT_EQ(ChatTemplate("{prompt}").apply("bare"), "bare");
  // The prompt goes in literally, even when it looks like a placeholder or holds braces.
  EXPECT_EQ(t.apply("{prompt} {x}"), "<|user|>\n{prompt} {x}</s>\n<|assistant|>\n");
}

TEST(ChatTemplate, Errors) {
  std::string message = error_of([] { ChatTemplate("Question: {question}"); });
  EXPECT_NE(message.find("has no {prompt} placeholder"), std::string::npos) << message;
  EXPECT_NE(message.find("Question: {question}"), std::string::npos) << message;
  EXPECT_NE(error_of([] { ChatTemplate("{prompt} and {prompt}"); }).find("more than once"),
            std::string::npos);
}

TEST(ChatTemplate, FromEscapedCommandLineText) {
  ChatTemplate t = ChatTemplate::from_escaped("Human: {prompt}\\n\\nAssistant:\\t\\\\ ");
  EXPECT_EQ(t.apply("x"), "Human: x\n\nAssistant:\t\\ ");
  EXPECT_NE(error_of([] { ChatTemplate::from_escaped("{prompt}\\q"); }).find("unknown escape \\q"),
            std::string::npos);
  EXPECT_NE(error_of([] { ChatTemplate::from_escaped("{prompt}\\"); }).find("lone backslash"),
            std::string::npos);
}

}  // namespace
}  // namespace rlaif
