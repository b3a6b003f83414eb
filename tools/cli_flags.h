// Command-line flags for every rlaif command: declared once with a default and a help line,
// parsed from `--name value` / `--name=value` / `--switch`, optionally from `--config FILE.json`
// (an object of flag names to values; the command line wins), and documented by `--help`.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace rlaif::cli {

// A mistake in how the command was called: the CLI prints it with a hint and exits with 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The items of a comma-separated flag value, spaces around each trimmed, empty items kept (so a
// caller can refuse them): "a, b,,c" → {"a", "b", "", "c"}; "" → {""}.
std::vector<std::string> split_list(const std::string& text);

class Flags {
 public:
  // `command` as typed ("pretrain", "tokenizer train"), `summary` one line for --help.
  Flags(std::string command, std::string summary);

  // Declares a flag taking a value; `default_value` "" with required=true makes it mandatory.
  Flags& option(const std::string& name, const std::string& default_value, const std::string& help,
                bool required = false);
  // Declares a switch (present = true).
  Flags& flag(const std::string& name, const std::string& help);
  // Declares a flag that may be given several times (--name A --name B), each value whole (no
  // splitting, so a value may hold commas); in --config, a string or an array of strings. The
  // command line's values replace --config's. values() gives them in order; str() gives them
  // as one JSON array text (what a checkpoint records), "" when none was given.
  Flags& repeatable(const std::string& name, const std::string& help);
  // Accepts bare arguments (not starting with --), shown in the usage line as NAME...; without
  // this call a bare argument is a UsageError. At least one is required when `required`.
  Flags& positional(const std::string& name, const std::string& help, bool required = true);

  // Parses argv (after the command words). Returns false when --help was asked for (the help
  // text has then been printed to stdout). Throws UsageError for unknown or malformed flags.
  bool parse(const std::vector<std::string>& args);

  std::string str(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  double number(const std::string& name) const;
  bool on(const std::string& name) const;
  // The values of a repeatable flag, in the order given; UsageError for another kind of flag.
  std::vector<std::string> values(const std::string& name) const;
  // Whether the user gave the flag (on the command line or in --config).
  bool given(const std::string& name) const;
  // Makes --config this command's own input file (required), not a file of flag values.
  Flags& config_is_input(const std::string& help);
  // The bare arguments, in order.
  const std::vector<std::string>& positionals() const { return positionals_; }

  std::string help() const;

 private:
  struct Spec {
    std::string default_value;
    std::string help;
    bool is_switch = false;
    bool required = false;
    bool repeatable = false;
  };
  const Spec& spec(const std::string& name) const;
  void set(const std::string& name, const std::string& value, const std::string& source);
  void load_config(const std::string& path);

  std::string command_;
  std::string summary_;
  std::vector<std::string> order_;
  std::map<std::string, Spec> specs_;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<std::string>> repeated_;  // repeatable flags' values
  std::string positional_name_;                               // empty: no bare arguments accepted
  std::string positional_help_;
  bool positional_required_ = false;
  bool config_holds_flags_ = true;
  std::vector<std::string> positionals_;
};

}  // namespace rlaif::cli
