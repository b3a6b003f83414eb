// Chat templates over whole conversations: which template a model directory gets, and the
// training text of multi-turn conversations (trained replies, spans found from renderings) for
// the single-slot default and for real Jinja templates (SmolLM2's ChatML, which renders earlier
// turns as it rendered them last, and Qwen3's, which drops the empty reasoning block of earlier
// replies).
#include <filesystem>

#include "io/chat_template.h"
#include "io/hf_chat_template.h"
#include "io/openai_protocol.h"
#include "tests/io/chat_template_goldens.h"
#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

using test::error_of;

const Conversation kTwoRounds = {{"system", "Be brief."},
                                 {"user", "u1"},
                                 {"assistant", "a1"},
                                 {"user", "u2"},
                                 {"assistant", "a2"}};

std::string joined(const ChatTemplate::Sequence& s) {
  std::string out;
  for (const auto& segment : s) out += segment.text;
  return out;
}

std::vector<std::string> trained(const ChatTemplate::Sequence& s) {
  std::vector<std::string> out;
  for (const auto& segment : s) {
    if (segment.trained) out.push_back(segment.text);
  }
  return out;
}

ChatTemplate real_template(const std::string& model) {
  auto t = std::make_shared<HfChatTemplate>(
      test::read_required(test::chat_template_data_dir() + model + ".jinja"),
      test::read_required(test::chat_template_data_dir() + model + ".tokens.json"));
  t->set_fixed_time(test::chat_template_golden_time());
  return ChatTemplate(t, model + ".jinja");
}

TEST(ChatTemplateConversation, DefaultTemplateTrainsEveryReplyOfTheTranscript) {
  ChatTemplate t;
  ChatTemplate::TrainingText text = t.training_text(kTwoRounds, false);
  ASSERT_EQ(text.sequences.size(), 1u);
  EXPECT_FALSE(text.one_per_reply);
  EXPECT_EQ(joined(text.sequences[0]),
            "Human: Be brief.\n\nu1\n\nAssistant: a1\n\nHuman: u2\n\nAssistant: a2");
  EXPECT_EQ(trained(text.sequences[0]), (std::vector<std::string>{"a1", "a2"}));
  EXPECT_EQ(trained(t.training_text(kTwoRounds, true).sequences[0]),
            std::vector<std::string>{"a2"});
  // The prompt of the last reply is what render_prompt gives for the turns before it.
  Conversation before(kTwoRounds.begin(), kTwoRounds.end() - 1);
  EXPECT_EQ(t.render_prompt(before),
            "Human: Be brief.\n\nu1\n\nAssistant: a1\n\nHuman: u2\n\nAssistant: ");
  EXPECT_EQ(t.apply("x"), t.render_prompt({{"user", "x"}}));

  EXPECT_NE(error_of([&] {
              t.training_text({{"user", "a"}, {"user", "b"}}, false);
            }).find("must end with the assistant's reply"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              t.training_text({{"user", "a"}, {"user", "b"}, {"assistant", "c"}}, false);
            }).find("alternate"),
            std::string::npos);
}

TEST(ChatTemplateConversation, ChatMlTemplateGivesOneSequenceWithEveryReplyAndItsEndOfTurn) {
  ChatTemplate t = real_template("smollm2");
  ASSERT_TRUE(t.is_jinja());
  Conversation conversation(kTwoRounds.begin() + 1, kTwoRounds.end());  // its default system
  ChatTemplate::TrainingText text = t.training_text(conversation, false);
  ASSERT_EQ(text.sequences.size(), 1u);
  EXPECT_FALSE(text.one_per_reply);
  const std::string system =
      "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
      "Face<|im_end|>\n";
  EXPECT_EQ(joined(text.sequences[0]),
            system +
                "<|im_start|>user\nu1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n"
                "<|im_start|>user\nu2<|im_end|>\n<|im_start|>assistant\na2<|im_end|>\n");
  EXPECT_EQ(trained(text.sequences[0]),
            (std::vector<std::string>{"a1<|im_end|>\n", "a2<|im_end|>\n"}));
  EXPECT_EQ(trained(t.training_text(conversation, true).sequences[0]),
            std::vector<std::string>{"a2<|im_end|>\n"});
  EXPECT_EQ(t.apply("Hi"), system + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateConversation, TemplateThatRewritesEarlierRepliesGivesOneSequencePerReply) {
  ChatTemplate t = real_template("qwen3");
  Conversation conversation(kTwoRounds.begin() + 1, kTwoRounds.end());
  ChatTemplate::TrainingText text = t.training_text(conversation, false);
  EXPECT_TRUE(text.one_per_reply);
  ASSERT_EQ(text.sequences.size(), 2u);
  // Each sequence is the conversation cut after its reply, rendered as Qwen3 renders a last
  // reply (with its empty reasoning block); earlier replies appear as they do in later prompts.
  EXPECT_EQ(joined(text.sequences[0]),
            "<|im_start|>user\nu1<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
            "a1<|im_end|>\n");
  EXPECT_EQ(trained(text.sequences[0]),
            std::vector<std::string>{"<think>\n\n</think>\n\na1<|im_end|>\n"});
  EXPECT_EQ(joined(text.sequences[1]),
            "<|im_start|>user\nu1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n"
            "<|im_start|>user\nu2<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
            "a2<|im_end|>\n");
  EXPECT_EQ(trained(text.sequences[1]),
            std::vector<std::string>{"<think>\n\n</think>\n\na2<|im_end|>\n"});
  // With the last reply only there is nothing to rewrite: one sequence.
  ChatTemplate::TrainingText last = t.training_text(conversation, true);
  EXPECT_FALSE(last.one_per_reply);
  ASSERT_EQ(last.sequences.size(), 1u);
  EXPECT_EQ(joined(last.sequences[0]), joined(text.sequences[1]));
}

TEST(ChatTemplateConversation, ModelDirectoryTemplateUnlessTheFlagSaysOtherwise) {
  test::TempDir dir;
  // No template in the directory: the default.
  EXPECT_FALSE(ChatTemplate::for_model(dir.str(), "").is_jinja());
  EXPECT_EQ(ChatTemplate::for_model(dir.str(), "").apply("x"), "Human: x\n\nAssistant: ");
  test::write_bytes(
      dir.file("tokenizer_config.json"),
      R"({"eos_token": "</s>", "chat_template": "{% for m in messages %}<{{ m.role }}>)"
      R"({{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %})"
      R"(<assistant>{% endif %}"})");
  ChatTemplate own = ChatTemplate::for_model(dir.str(), "");
  EXPECT_TRUE(own.is_jinja());
  EXPECT_EQ(own.apply("x"), "<user>x</s><assistant>");
  EXPECT_NE(own.describe().find("tokenizer_config.json"), std::string::npos);
  // A {prompt} text overrides it; so does a Jinja file, rendered with the directory's tokens.
  EXPECT_EQ(ChatTemplate::for_model(dir.str(), "Q: {prompt}\\nA:").apply("x"), "Q: x\nA:");
  test::write_bytes(dir.file("other.jinja"),
                    "{% for m in messages %}[{{ m.content }}]{{ eos_token }}{% endfor %}");
  ChatTemplate file = ChatTemplate::for_model(dir.str(), dir.file("other.jinja"));
  EXPECT_TRUE(file.is_jinja());
  EXPECT_EQ(file.apply("x"), "[x]</s>");
  EXPECT_NE(error_of([&] { ChatTemplate::for_model(dir.str(), "no slot"); }).find("{prompt}"),
            std::string::npos);
}

TEST(ChatTemplateConversation, ServerRendersMessagesWithTheJinjaTemplate) {
  ChatTemplate t = real_template("smollm2");
  EXPECT_EQ(render_chat({{"user", "Hi"}}, t), t.apply("Hi"));
  // A last assistant message is a prefill the reply continues.
  EXPECT_EQ(render_chat({{"user", "Hi"}, {"assistant", "Sure,"}}, t), t.apply("Hi") + "Sure,");
  ChatTemplate refusing(
      std::make_shared<HfChatTemplate>("{{ raise_exception('roles must alternate') }}", "{}"),
      "refusing.jinja");
  try {
    render_chat({{"user", "Hi"}}, refusing);
    ADD_FAILURE() << "no error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_NE(std::string(e.what()).find("roles must alternate"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace rlaif
