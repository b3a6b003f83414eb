#include "tools/cli_flags.h"

#include <algorithm>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace rlaif::cli {

Flags::Flags(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {
  flag("help", "print this help and exit");
  option("config", "", "JSON file whose object supplies any flag (command-line flags win)");
}

Flags& Flags::option(const std::string& name, const std::string& default_value,
                     const std::string& help, bool required) {
  if (!specs_.count(name)) order_.push_back(name);
  specs_[name] = Spec{default_value, help, false, required};
  return *this;
}

Flags& Flags::flag(const std::string& name, const std::string& help) {
  if (!specs_.count(name)) order_.push_back(name);
  specs_[name] = Spec{"false", help, true, false};
  return *this;
}

Flags& Flags::repeatable(const std::string& name, const std::string& help) {
  if (!specs_.count(name)) order_.push_back(name);
  specs_[name] = Spec{"", help, false, false, true};
  return *this;
}

Flags& Flags::config_is_input(const std::string& help) {
  config_holds_flags_ = false;
  specs_["config"] = Spec{"", help, false, true};
  return *this;
}

Flags& Flags::positional(const std::string& name, const std::string& help, bool required) {
  positional_name_ = name;
  positional_help_ = help;
  positional_required_ = required;
  return *this;
}

const Flags::Spec& Flags::spec(const std::string& name) const {
  auto it = specs_.find(name);
  if (it == specs_.end()) throw UsageError("unknown flag --" + name);
  return it->second;
}

void Flags::set(const std::string& name, const std::string& value, const std::string& source) {
  if (!specs_.count(name)) throw UsageError("unknown flag --" + name + source);
  values_[name] = value;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t end = std::min(text.find(',', start), text.size());
    std::string item = text.substr(start, end - start);
    const size_t first = item.find_first_not_of(' '), last = item.find_last_not_of(' ');
    out.push_back(first == std::string::npos ? "" : item.substr(first, last - first + 1));
    if (end == text.size()) return out;
    start = end + 1;
  }
}

bool Flags::parse(const std::vector<std::string>& args) {
  std::map<std::string, std::string> from_command_line;
  std::map<std::string, std::vector<std::string>> repeated_on_command_line;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h") return std::fputs(help().c_str(), stdout), false;
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      if (!positional_name_.empty() && arg != "--") {
        positionals_.push_back(arg);
        continue;
      }
      throw UsageError("unexpected argument '" + arg + "' (flags look like --name value)");
    }
    std::string name = arg.substr(2), value;
    size_t eq = name.find('=');
    bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Spec& s = spec(name);
    if (s.is_switch) {
      if (!inline_value) value = "true";
      if (value != "true" && value != "false") {
        throw UsageError("--" + name + " is a switch: give it alone or as --" + name +
                         "=true|false");
      }
    } else if (!inline_value) {
      if (i + 1 >= args.size()) throw UsageError("--" + name + " needs a value");
      value = args[++i];
    }
    if (s.repeatable) repeated_on_command_line[name].push_back(value);
    from_command_line[name] = value;
  }
  if (from_command_line.count("help") && from_command_line["help"] == "true") {
    std::fputs(help().c_str(), stdout);
    return false;
  }
  if (config_holds_flags_ && from_command_line.count("config")) {
    load_config(from_command_line["config"]);
  }
  for (auto& [name, value] : from_command_line) values_[name] = value;
  for (auto& [name, list] : repeated_on_command_line) repeated_[name] = std::move(list);
  if (positional_required_ && positionals_.empty()) {
    throw UsageError("missing " + positional_name_ + " (" + positional_help_ + ")");
  }
  for (const auto& name : order_) {
    const Spec& s = specs_.at(name);
    if (s.required && (!values_.count(name) || values_[name].empty())) {
      throw UsageError("missing required flag --" + name + " (" + s.help + ")");
    }
  }
  return true;
}

void Flags::load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError("--config: cannot open '" + path + "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  // JSON text holds no NUL byte; the parser would take one for the end of the file.
  if (const size_t nul = text.find('\0'); nul != std::string::npos) {
    throw UsageError("--config: " + path + ":" +
                     std::to_string(1 + std::count(text.begin(), text.begin() + nul, '\n')) +
                     ": a NUL byte (binary data, not JSON text)");
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.c_str(), text.size());
  if (doc.HasParseError()) {
    // Turn the byte offset into a line number the user can jump to.
    size_t offset = doc.GetErrorOffset();
    size_t line = 1;
    for (size_t i = 0; i < offset && i < text.size(); ++i) line += text[i] == '\n';
    throw UsageError("--config: " + path + ":" + std::to_string(line) + ": " +
                     rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject()) throw UsageError("--config: " + path + " must hold a JSON object");
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    std::string name = it->name.GetString();
    const auto& v = it->value;
    std::string value;
    if (auto found = specs_.find(name); found != specs_.end() && found->second.repeatable) {
      const std::string wrong =
          "--config: " + path + ": \"" + name + "\" must be a string or an array of strings";
      std::vector<std::string> list;
      if (v.IsString()) {
        list.emplace_back(v.GetString(), v.GetStringLength());
      } else if (v.IsArray()) {
        for (const auto& item : v.GetArray()) {
          if (!item.IsString()) throw UsageError(wrong);
          list.emplace_back(item.GetString(), item.GetStringLength());
        }
      } else {
        throw UsageError(wrong);
      }
      repeated_[name] = std::move(list);
      values_[name] = "";
      continue;
    }
    if (v.IsString()) {
      value = v.GetString();
    } else if (v.IsBool()) {
      value = v.GetBool() ? "true" : "false";
    } else if (v.IsInt64()) {
      value = std::to_string(v.GetInt64());
    } else if (v.IsNumber()) {
      std::ostringstream os;
      os.precision(17);
      os << v.GetDouble();
      value = os.str();
    } else {
      throw UsageError("--config: " + path + ": value of \"" + name +
                       "\" must be a string, number or boolean");
    }
    set(name, value, " (in " + path + ")");
  }
}

std::string Flags::str(const std::string& name) const {
  const Spec& s = spec(name);
  if (s.repeatable) {
    auto it = repeated_.find(name);
    if (it == repeated_.end()) return "";
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartArray();
    for (const std::string& v : it->second)
      w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    w.EndArray();
    return std::string(buffer.GetString(), buffer.GetSize());
  }
  auto it = values_.find(name);
  return it != values_.end() ? it->second : s.default_value;
}

int64_t Flags::integer(const std::string& name) const {
  std::string text = str(name);
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw UsageError("--" + name + " must be an integer, got '" + text + "'");
  }
  return value;
}

double Flags::number(const std::string& name) const {
  std::string text = str(name);
  try {
    size_t used = 0;
    double value = std::stod(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw UsageError("--" + name + " must be a number, got '" + text + "'");
}

bool Flags::on(const std::string& name) const {
  return str(name) == "true";
}

std::vector<std::string> Flags::values(const std::string& name) const {
  if (!spec(name).repeatable) throw UsageError("--" + name + " is not a repeatable flag");
  auto it = repeated_.find(name);
  return it == repeated_.end() ? std::vector<std::string>{} : it->second;
}

bool Flags::given(const std::string& name) const {
  return values_.count(name) > 0;
}

std::string Flags::help() const {
  std::ostringstream os;
  os << "usage: rlaif " << command_;
  if (!positional_name_.empty()) os << " " << positional_name_ << "...";
  os << " [flags]\n\n" << summary_ << "\n\n";
  if (!positional_name_.empty()) os << positional_name_ << "...: " << positional_help_ << "\n\n";
  os << "flags:\n";
  for (const auto& name : order_) {
    const Spec& s = specs_.at(name);
    std::string left = "  --" + name + (s.is_switch ? "" : s.repeatable ? " VALUE..." : " VALUE");
    os << left;
    if (left.size() < 28)
      os << std::string(28 - left.size(), ' ');
    else
      os << "\n" << std::string(28, ' ');
    os << s.help;
    if (s.required)
      os << " (required)";
    else if (!s.is_switch && !s.default_value.empty())
      os << " (default: " << s.default_value << ")";
    os << "\n";
  }
  return os.str();
}

}  // namespace rlaif::cli
