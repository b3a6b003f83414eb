// Small helpers for reading the components of a Hugging Face tokenizer.json with RapidJSON, so
// that every malformed or unsupported field is an Error naming the file and the component.
#pragma once

#include <rapidjson/document.h>

#include <string>

namespace rlaif::hf {

using Json = rapidjson::Value;

// "tokenizer.json: pre_tokenizer Split" style prefix used in every error message.
std::string component_origin(const std::string& file, const std::string& slot, const Json& value);
// The "type" member of a component object; Error naming `origin` when it is missing.
std::string type_of(const Json& value, const std::string& origin);
// Typed member access: the default when absent or null, Error when present with another type.
std::string string_member(const Json& obj, const char* name, const std::string& origin,
                          const std::string& fallback = "");
bool bool_member(const Json& obj, const char* name, const std::string& origin, bool fallback);
const Json* member(const Json& obj, const char* name);  // nullptr when absent or null
// A {"String": "..."} or {"Regex": "..."} pattern as a PCRE2 regular expression.
std::string pattern_member(const Json& obj, const char* name, const std::string& origin);

}  // namespace rlaif::hf
