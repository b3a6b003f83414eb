#include "tools/experiment_config.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/error.h"

namespace rlaif::cli {
namespace {

namespace fs = std::filesystem;

std::string flag_value(const rapidjson::Value& v, const std::string& where) {
  if (v.IsString()) return v.GetString();
  if (v.IsBool()) return v.GetBool() ? "true" : "false";
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  if (v.IsNumber()) {
    // The shortest text that reads back as the same double: 0.0003, not 0.00029999999999999997.
    char text[32];
    const auto [end, ec] = std::to_chars(text, text + sizeof text, v.GetDouble());
    RLAIF_CHECK(ec == std::errc(), where, ": cannot format the number");
    return std::string(text, end);
  }
  throw Error(where + ": a flag value must be a string, number or boolean");
}

FlagList read_flags(const rapidjson::Value& v, const std::string& where) {
  RLAIF_CHECK(v.IsObject(), where, " must be an object of flag names to values");
  FlagList flags;
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    const std::string name = it->name.GetString();
    RLAIF_CHECK(!name.starts_with("-"), where, ": write the flag \"", name, "\" without dashes");
    flags.emplace_back(name, flag_value(it->value, where + "." + name));
  }
  return flags;
}

}  // namespace

std::string Endpoint::describe() const {
  return local() ? "local: " + model_dir : model + " at " + api_base;
}

const std::vector<std::string>& known_arms() {
  static const std::vector<std::string> arms = {"sft_strong", "sft_weak", "sft_weak_dpo",
                                                "sft_strong_dpo"};
  return arms;
}

void append_flags(std::vector<std::string>& argv, const FlagList& flags) {
  for (const auto& [name, value] : flags) {
    if (value == "false") continue;
    argv.push_back("--" + name);
    if (value != "true") argv.push_back(value);
  }
}

ExperimentConfig ExperimentConfig::load(const std::string& path) {
  std::ifstream in(path);
  RLAIF_CHECK(in.good(), "--config: cannot open '", path, "'");
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.str().c_str());
  RLAIF_CHECK(!doc.HasParseError(), path, ": invalid JSON at byte ", doc.GetErrorOffset(), ": ",
              rapidjson::GetParseError_En(doc.GetParseError()));
  RLAIF_CHECK(doc.IsObject(), path, ": must hold a JSON object");
  const fs::path dir = fs::path(path).parent_path();
  auto resolve = [&](const std::string& p) {
    return p.empty() || fs::path(p).is_absolute() ? p : (dir / p).lexically_normal().string();
  };
  auto string_key = [&](const char* key, bool required) -> std::string {
    if (!doc.HasMember(key)) {
      RLAIF_CHECK(!required, path, ": missing \"", key, "\"");
      return "";
    }
    RLAIF_CHECK(doc[key].IsString(), path, ": \"", key, "\" must be a string");
    return doc[key].GetString();
  };
  auto endpoint = [&](const char* key) {
    Endpoint e;
    if (!doc.HasMember(key)) return e;
    const rapidjson::Value& v = doc[key];
    const std::string where = path + ": \"" + key + "\"";
    RLAIF_CHECK(v.IsObject(), where,
                " must be an object: {\"model_dir\": DIR} or {\"api_base\": URL, \"model\": NAME}");
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      const std::string name = it->name.GetString();
      const std::string value = flag_value(it->value, where + "." + name);
      if (name == "model_dir")
        e.model_dir = resolve(value);
      else if (name == "api_base")
        e.api_base = value;
      else if (name == "model")
        e.model = value;
      else
        e.api_flags.emplace_back(name, value);
    }
    RLAIF_CHECK(e.local() != !e.api_base.empty(), where,
                " needs exactly one of \"model_dir\" and \"api_base\"");
    RLAIF_CHECK(e.local() || !e.model.empty(), where, " needs \"model\" with \"api_base\"");
    return e;
  };

  ExperimentConfig c;
  c.path = path;
  c.base_model = resolve(string_key("base_model", true));
  c.train_prompts = resolve(string_key("train_prompts", true));
  c.eval_prompts = resolve(string_key("eval_prompts", true));
  c.critic_template = resolve(string_key("critic_template", false));
  if (doc.HasMember("exact_match")) {
    RLAIF_CHECK(doc["exact_match"].IsBool(), path, ": \"exact_match\" must be true or false");
    c.exact_match = doc["exact_match"].GetBool();
  }
  c.strong_teacher = endpoint("strong_teacher");
  c.weak_teacher = endpoint("weak_teacher");
  c.critic = endpoint("critic");
  c.judge = doc.HasMember("judge") ? endpoint("judge") : c.critic;
  RLAIF_CHECK(c.judge.local() || !c.judge.api_base.empty(), path,
              ": needs a \"critic\" (or a \"judge\") to score the arms");
  c.arms = {"sft_strong", "sft_weak", "sft_weak_dpo"};
  if (doc.HasMember("arms")) {
    RLAIF_CHECK(doc["arms"].IsArray() && doc["arms"].Size() > 0, path,
                ": \"arms\" must be a non-empty array");
    c.arms.clear();
    for (const auto& a : doc["arms"].GetArray()) {
      RLAIF_CHECK(a.IsString(), path, ": \"arms\" must list names");
      const std::string arm = a.GetString();
      RLAIF_CHECK(std::find(known_arms().begin(), known_arms().end(), arm) != known_arms().end(),
                  path, ": unknown arm \"", arm,
                  "\" (known: sft_strong, sft_weak, sft_weak_dpo, sft_strong_dpo)");
      c.arms.push_back(arm);
    }
  }
  for (const std::string& arm : c.arms) {
    const bool strong = arm.starts_with("sft_strong");
    const Endpoint& teacher = strong ? c.strong_teacher : c.weak_teacher;
    RLAIF_CHECK(teacher.local() || !teacher.api_base.empty(), path, ": arm ", arm, " needs a \"",
                strong ? "strong_teacher" : "weak_teacher", "\"");
    if (arm.ends_with("_dpo")) {
      RLAIF_CHECK(c.critic.local() || !c.critic.api_base.empty(), path, ": arm ", arm,
                  " needs a \"critic\"");
    }
  }
  const std::pair<const char*, FlagList*> sections[] = {
      {"distill", &c.distill}, {"sft", &c.sft}, {"sample", &c.sample},
      {"label", &c.label},     {"dpo", &c.dpo}, {"eval", &c.eval}};
  for (const auto& [key, flags] : sections) {
    if (doc.HasMember(key)) *flags = read_flags(doc[key], path + ": \"" + key + "\"");
  }
  static const char* const kKnown[] = {
      "base_model",   "train_prompts", "eval_prompts", "exact_match",     "strong_teacher",
      "weak_teacher", "critic",        "judge",        "critic_template", "arms",
      "distill",      "sft",           "sample",       "label",           "dpo",
      "eval",         "name",          "description"};
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    const std::string key = it->name.GetString();
    RLAIF_CHECK(std::find(std::begin(kKnown), std::end(kKnown), key) != std::end(kKnown), path,
                ": unknown key \"", key, "\"");
  }
  return c;
}

}  // namespace rlaif::cli
