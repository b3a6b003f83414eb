// Builds the syntax tree (io/jinja_ast.h) of a template from its tokens with jinja2's grammar;
// expressions are io/jinja_expression_parser.h's. Statements: if/elif/else, for (with "if"
// filter and else), set (plain, unpacking, namespace attribute, block), macro, call, break,
// continue, and Hugging Face's generation block.
// Anything else — include, extends, import, block, filter blocks, unknown filters or tests — is
// rejected here with an Error that names the construct and its line.
#pragma once

#include <string_view>

#include "io/jinja_ast.h"

namespace rlaif::jinja {

Body parse_template(std::string_view source);

}  // namespace rlaif::jinja
