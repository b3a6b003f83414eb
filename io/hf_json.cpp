#include "io/hf_json.h"

#include "io/hf_text.h"
#include "runtime/error.h"

namespace rlaif::hf {

std::string component_origin(const std::string& file, const std::string& slot, const Json& value) {
  std::string type = "?";
  if (value.IsObject() && value.HasMember("type") && value["type"].IsString()) {
    type = value["type"].GetString();
  }
  return file + ": " + slot + " " + type;
}

std::string type_of(const Json& value, const std::string& origin) {
  RLAIF_CHECK(value.IsObject() && value.HasMember("type") && value["type"].IsString(), origin,
              ": component has no \"type\"");
  return value["type"].GetString();
}

const Json* member(const Json& obj, const char* name) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

std::string string_member(const Json& obj, const char* name, const std::string& origin,
                          const std::string& fallback) {
  const Json* v = member(obj, name);
  if (v == nullptr) return fallback;
  RLAIF_CHECK(v->IsString(), origin, ": \"", name, "\" must be a string");
  return std::string(v->GetString(), v->GetStringLength());
}

bool bool_member(const Json& obj, const char* name, const std::string& origin, bool fallback) {
  const Json* v = member(obj, name);
  if (v == nullptr) return fallback;
  RLAIF_CHECK(v->IsBool(), origin, ": \"", name, "\" must be true or false");
  return v->GetBool();
}

std::string pattern_member(const Json& obj, const char* name, const std::string& origin) {
  const Json* v = member(obj, name);
  RLAIF_CHECK(v != nullptr && v->IsObject(), origin, ": \"", name,
              "\" must be {\"String\": ...} or {\"Regex\": ...}");
  if (const Json* s = member(*v, "String")) {
    RLAIF_CHECK(s->IsString(), origin, ": \"", name, "\".String must be a string");
    return escape_regex(std::string_view(s->GetString(), s->GetStringLength()));
  }
  if (const Json* r = member(*v, "Regex")) {
    RLAIF_CHECK(r->IsString(), origin, ": \"", name, "\".Regex must be a string");
    return std::string(r->GetString(), r->GetStringLength());
  }
  throw Error(origin, ": \"", name, "\" must be {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace rlaif::hf
