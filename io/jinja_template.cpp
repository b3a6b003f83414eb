#include "io/jinja_template.h"

#include "io/jinja_interpreter.h"
#include "io/jinja_parser.h"

namespace rlaif {

JinjaTemplate::JinjaTemplate(std::string_view source)
    : body_(std::make_shared<const jinja::Body>(jinja::parse_template(source))) {}

std::string JinjaTemplate::render(const jinja::Dict& context,
                                  const jinja::RenderLimits& limits) const {
  return jinja::render_body(*body_, context, limits);
}

}  // namespace rlaif
