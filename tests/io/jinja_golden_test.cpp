// The interpreter against jinja2 itself: every snippet in tests/data/chat_templates/snippets.json
// (one per operator, filter, test, statement and whitespace-control case, rendered by jinja2
// with Hugging Face's settings by tools/golden/make_chat_template_goldens.py) must render to
// the same bytes, raise the same raise_exception message, or fail where jinja2 fails.
#include <gtest/gtest.h>

#include <ctime>

#include "io/hf_chat_template.h"
#include "io/jinja_json.h"
#include "tests/io/chat_template_goldens.h"
#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

TEST(JinjaGolden, SnippetsRenderAsJinja2Does) {
  std::string path = test::chat_template_data_dir() + "snippets.json";
  jinja::Value snippets = jinja::value_from_json_text(test::read_required(path), path);
  ASSERT_TRUE(snippets.is_list());
  ASSERT_GT(snippets.as_list().size(), 80u);
  for (const jinja::Value& snippet : snippets.as_list()) {
    const jinja::Dict& s = snippet.as_dict();
    const std::string& source = s.find("template")->as_string();
    std::string context = jinja::value_to_json(*s.find("context"));
    SCOPED_TRACE("template: " + source);
    auto render = [&] {
      HfChatTemplate t(source, "{}");
      t.set_fixed_time(test::chat_template_golden_time());
      return t.render("[]", false, context);
    };
    if (const jinja::Value* expected = s.find("expected")) {
      try {
        EXPECT_EQ(render(), expected->as_string());
      } catch (const Error& e) {
        ADD_FAILURE() << "threw: " << e.what();
      }
    } else if (const jinja::Value* raised = s.find("raised")) {
      try {
        render();
        ADD_FAILURE() << "expected raise_exception";
      } catch (const ChatTemplateRaised& e) {
        EXPECT_EQ(e.template_message(), raised->as_string());
      }
    } else {
      std::string message = test::error_of(render);
      EXPECT_NE(message, "") << "jinja2: " << s.find("error")->as_string();
    }
  }
}

}  // namespace
}  // namespace rlaif
