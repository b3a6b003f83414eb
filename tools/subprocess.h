// Child processes for commands that drive other rlaif commands (`rlaif experiment`): run one to
// completion with its stdout captured, or keep a `rlaif serve` running for as long as it is
// needed. Children share the terminal's process group, so Ctrl-C reaches them too and each
// stops the way it does on its own (saving a checkpoint, keeping its request cache).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace rlaif::cli {

// This program's own executable (/proc/self/exe), to run other rlaif commands with.
std::string own_executable();

struct ProcessResult {
  int exit_code = 0;  // the child's exit status; 128 + N when a signal N ended it
  std::string out;    // everything it wrote to stdout
};

// Runs argv[0] with argv, its stdout captured, its stderr shown on ours. Error when it cannot
// be started.
ProcessResult run_process(const std::vector<std::string>& argv);

// `rlaif serve` of one model directory on a free loopback port, stopped (SIGTERM, then waited
// for) when this object goes away. Its log goes to `log_path`.
class ServedModel {
 public:
  ServedModel(const std::string& model_dir, const std::string& name, const std::string& log_path);
  ~ServedModel();
  ServedModel(const ServedModel&) = delete;
  ServedModel& operator=(const ServedModel&) = delete;

  // http://127.0.0.1:PORT/v1
  const std::string& api_base() const { return api_base_; }
  const std::string& name() const { return name_; }

 private:
  pid_t pid_ = -1;
  std::string api_base_;
  std::string name_;
};

// A command line as a shell would read it, for logs and --dry-run.
std::string shell_quote(const std::vector<std::string>& argv);

}  // namespace rlaif::cli
