// A Jinja template, parsed once and rendered any number of times: the entry point to the
// interpreter in io/jinja_*.{h,cpp}. It implements the subset of jinja2 that Hugging Face chat
// templates use (io/jinja_parser.h lists the statements, io/jinja_filters.h the filters and
// tests, io/jinja_methods.h the methods) and renders byte for byte what jinja2 renders with
// Hugging Face's settings (trim_blocks, lstrip_blocks, loop controls; io/jinja_lexer.h).
//
//   JinjaTemplate t("{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}");
//   jinja::Dict context;
//   context.set("messages", jinja::value_from_json_text(messages_json, "messages"));
//   std::string text = t.render(context);
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "io/jinja_ast.h"
#include "io/jinja_interpreter.h"
#include "io/jinja_value.h"

namespace rlaif {

class JinjaTemplate {
 public:
  // Parses `source`; throws Error naming the line and construct of a syntax error or of
  // anything outside the supported subset.
  explicit JinjaTemplate(std::string_view source);

  // Renders with the variables in `context`; throws Error on the template's run-time errors,
  // and on a render past `limits` (io/jinja_interpreter.h).
  std::string render(const jinja::Dict& context,
                     const jinja::RenderLimits& limits = jinja::RenderLimits{}) const;

 private:
  std::shared_ptr<const jinja::Body> body_;
};

}  // namespace rlaif
