// Chat templates of real models (Qwen2.5, Qwen3, Llama 3.1 and 3.2, Gemma 3, Mistral Nemo,
// SmolLM2, Phi-3; tests/data/chat_templates/README.md gives their sources) rendered over the
// conversations in goldens.json must give exactly what transformers' apply_chat_template gives
// (as rendered by jinja2 with transformers' settings in
// tools/golden/make_chat_template_goldens.py), including the messages of raise_exception. Also:
// loading from a model directory.
#include "io/hf_chat_template.h"

#include <gtest/gtest.h>

#include <ctime>
#include <map>

#include "io/jinja_json.h"
#include "tests/io/chat_template_goldens.h"
#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

TEST(HfChatTemplate, RealTemplatesMatchTransformersGoldens) {
  jinja::Value goldens = jinja::value_from_json_text(
      test::read_required(test::chat_template_data_dir() + "goldens.json"), "goldens.json");
  std::map<std::string, const jinja::Dict*> conversations;
  for (const jinja::Value& c : goldens.as_dict().find("conversations")->as_list()) {
    conversations[c.as_dict().find("name")->as_string()] = &c.as_dict();
  }
  std::map<std::string, HfChatTemplate> templates;
  size_t rendered = 0, raised = 0;
  for (const jinja::Value& r : goldens.as_dict().find("renders")->as_list()) {
    const jinja::Dict& golden = r.as_dict();
    const std::string& model = golden.find("model")->as_string();
    const std::string& name = golden.find("conversation")->as_string();
    bool add_generation_prompt = golden.find("add_generation_prompt")->as_bool();
    SCOPED_TRACE(model + " / " + name + (add_generation_prompt ? " / generation prompt" : ""));
    if (!templates.count(model)) {
      HfChatTemplate t(
          test::read_required(test::chat_template_data_dir() + model + ".jinja"),
          test::read_required(test::chat_template_data_dir() + model + ".tokens.json"));
      t.set_fixed_time(test::chat_template_golden_time());
      templates.emplace(model, std::move(t));
    }
    const jinja::Dict& conversation = *conversations.at(name);
    std::string messages = jinja::value_to_json(*conversation.find("messages"));
    std::string extra = jinja::value_to_json(*conversation.find("extra"));
    auto render = [&] {
      return templates.at(model).render(messages, add_generation_prompt, extra);
    };
    if (const jinja::Value* expected = golden.find("expected")) {
      try {
        EXPECT_EQ(render(), expected->as_string());
        ++rendered;
      } catch (const Error& e) {
        ADD_FAILURE() << "threw: " << e.what();
      }
    } else if (const jinja::Value* message = golden.find("raised")) {
      try {
        render();
        ADD_FAILURE() << "expected raise_exception(" << message->as_string() << ")";
      } catch (const ChatTemplateRaised& e) {
        EXPECT_EQ(e.template_message(), message->as_string());
        ++raised;
      }
    } else {
      EXPECT_NE(test::error_of(render), "") << golden.find("error")->as_string();
    }
  }
  EXPECT_GT(rendered, 200u);
  EXPECT_GT(raised, 10u);
}

// Every golden conversation that ends with an assistant message splits into a prompt and a
// completion that concatenate to the golden render.
TEST(HfChatTemplate, SplitsLastAssistantTurnOfRealTemplates) {
  jinja::Value goldens = jinja::value_from_json_text(
      test::read_required(test::chat_template_data_dir() + "goldens.json"), "goldens.json");
  std::map<std::string, const jinja::Dict*> conversations;
  for (const jinja::Value& c : goldens.as_dict().find("conversations")->as_list()) {
    conversations[c.as_dict().find("name")->as_string()] = &c.as_dict();
  }
  size_t checked = 0;
  for (const jinja::Value& r : goldens.as_dict().find("renders")->as_list()) {
    const jinja::Dict& golden = r.as_dict();
    const jinja::Value* expected = golden.find("expected");
    if (expected == nullptr || golden.find("add_generation_prompt")->as_bool()) continue;
    const jinja::Dict& conversation = *conversations.at(golden.find("conversation")->as_string());
    const jinja::Value& messages = *conversation.find("messages");
    if (messages.as_list().back().as_dict().find("role")->str() != "assistant") continue;
    const std::string& model = golden.find("model")->as_string();
    SCOPED_TRACE(model + " / " + golden.find("conversation")->as_string());
    HfChatTemplate t(test::read_required(test::chat_template_data_dir() + model + ".jinja"),
                     test::read_required(test::chat_template_data_dir() + model + ".tokens.json"));
    t.set_fixed_time(test::chat_template_golden_time());
    try {
      auto split = t.split_last_assistant_turn(jinja::value_to_json(messages),
                                               jinja::value_to_json(*conversation.find("extra")));
      EXPECT_EQ(split.prompt + split.completion, expected->as_string());
      EXPECT_FALSE(split.completion.empty());
      ++checked;
    } catch (const ChatTemplateRaised&) {
      // The conversation without its last turn breaks the template's rules (e.g. Gemma's
      // alternation); nothing to split.
    } catch (const Error& e) {
      // Mistral moves the system message into the last user turn, so earlier turns render
      // differently once a later one exists.
      EXPECT_NE(std::string(e.what()).find("does not render as a prefix"), std::string::npos);
      EXPECT_EQ(model, "mistral_nemo");
    }
  }
  EXPECT_GT(checked, 20u);
}

TEST(HfChatTemplate, SplitGivesPromptWithGenerationPromptAndCompletionWithEndOfTurn) {
  HfChatTemplate t(test::read_required(test::chat_template_data_dir() + "smollm2.jinja"),
                   test::read_required(test::chat_template_data_dir() + "smollm2.tokens.json"));
  auto split = t.split_last_assistant_turn(
      R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])");
  EXPECT_EQ(split.prompt,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(split.completion, "Hello<|im_end|>\n");

  EXPECT_NE(test::error_of([&] {
              t.split_last_assistant_turn(R"([{"role": "user", "content": "Hi"}])");
            }).find("ends with an assistant message"),
            std::string::npos);
  HfChatTemplate rewriting(
      "{% for m in messages %}{{ m.content }}{% if loop.last %}!{% endif %}{% endfor %}", "{}");
  EXPECT_NE(test::error_of([&] {
              rewriting.split_last_assistant_turn(
                  R"([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])");
            }).find("does not render as a prefix"),
            std::string::npos);
}

TEST(HfChatTemplate, LoadsStringTemplateAndTokenObjectsFromTokenizerConfig) {
  test::TempDir dir;
  test::write_bytes(
      dir.file("tokenizer_config.json"),
      R"({"bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>",
                 "unk_token": null,
                 "chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}{{ unk_token is defined }}"})");
  HfChatTemplate t = HfChatTemplate::from_model_dir(dir.str());
  EXPECT_EQ(t.render({{"user", "hi"}, {"assistant", "yo"}}, false),
            "<s>[user]hi</s>[assistant]yo</s>False");
}

TEST(HfChatTemplate, PicksTheDefaultOfNamedTemplates) {
  test::TempDir dir;
  test::write_bytes(dir.file("tokenizer_config.json"),
                    R"({"chat_template": [{"name": "tool_use", "template": "tools"},
                                   {"name": "default", "template": "plain {{ messages|length }}"}]})");
  EXPECT_EQ(HfChatTemplate::from_model_dir(dir.str()).render("[{}]", false), "plain 1");
  EXPECT_EQ(HfChatTemplate::from_model_dir(dir.str(), "tool_use").render("[]", false), "tools");
  std::string message = test::error_of([&] { HfChatTemplate::from_model_dir(dir.str(), "rag"); });
  EXPECT_NE(message.find("no chat template named 'rag'"), std::string::npos) << message;
  EXPECT_NE(message.find("tool_use, default"), std::string::npos) << message;
}

TEST(HfChatTemplate, ChatTemplateJinjaFileTakesPrecedence) {
  test::TempDir dir;
  test::write_bytes(dir.file("tokenizer_config.json"),
                    R"({"eos_token": "<e>", "chat_template": "from config"})");
  test::write_bytes(dir.file("chat_template.jinja"), "from file{{ eos_token }}\n");
  EXPECT_EQ(HfChatTemplate::from_model_dir(dir.str()).render("[]", true), "from file<e>");
}

TEST(HfChatTemplate, MissingTemplateIsAnError) {
  test::TempDir dir;
  test::write_bytes(dir.file("tokenizer_config.json"), R"({"eos_token": "</s>"})");
  std::string message = test::error_of([&] { HfChatTemplate::from_model_dir(dir.str()); });
  EXPECT_NE(message.find("neither chat_template.jinja nor"), std::string::npos) << message;
}

TEST(HfChatTemplate, ContextDefaultsMatchTransformers) {
  HfChatTemplate t(
      "{{ tools is none }}{{ documents is none }}{{ add_generation_prompt }}"
      "{{ bos_token is defined }}{{ extra }}{{ strftime_now('%Y') | length }}",
      R"({"eos_token": "</s>"})");
  EXPECT_EQ(t.render("[]", true, R"({"extra": [1, "x"]})"), "TrueTrueTrueFalse[1, 'x']4");
}

TEST(HfChatTemplate, RaiseExceptionCarriesTheTemplateMessage) {
  HfChatTemplate t(
      "{% if messages[0].role != 'user' %}{{ raise_exception('roles: ' ~ messages[0].role) }}{% "
      "endif %}",
      "{}");
  try {
    t.render(R"([{"role": "assistant", "content": "x"}])", false);
    FAIL() << "expected ChatTemplateRaised";
  } catch (const ChatTemplateRaised& e) {
    EXPECT_EQ(e.template_message(), "roles: assistant");
    EXPECT_NE(std::string(e.what()).find("roles: assistant"), std::string::npos);
  }
}

TEST(HfChatTemplate, BadMessagesJsonIsAnError) {
  HfChatTemplate t("{{ messages }}", "{}");
  EXPECT_NE(test::error_of([&] { t.render("{\"role\": 1}", false); }).find("JSON array"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { t.render("[", false); }).find("invalid JSON"), std::string::npos);
}

}  // namespace
}  // namespace rlaif
