#include "tools/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "runtime/error.h"

namespace rlaif::cli {
namespace {

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const std::string& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// Forks and runs argv with stdout on `out_fd` (-1: inherited) and stderr on `err_fd` (-1:
// inherited). The child never returns.
pid_t spawn(const std::vector<std::string>& argv, int out_fd, int err_fd, int close_fd) {
  std::vector<char*> args = c_argv(argv);
  const pid_t pid = ::fork();
  RLAIF_CHECK(pid >= 0, "cannot start ", argv[0], ": fork failed: ", std::strerror(errno));
  if (pid == 0) {
    if (close_fd >= 0) ::close(close_fd);
    if (out_fd >= 0) ::dup2(out_fd, STDOUT_FILENO);
    if (err_fd >= 0) ::dup2(err_fd, STDERR_FILENO);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 1;
  }
  return exit_code_of(status);
}

}  // namespace

std::string own_executable() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  RLAIF_CHECK(!ec, "cannot find this program's executable (/proc/self/exe): ", ec.message());
  return self.string();
}

ProcessResult run_process(const std::vector<std::string>& argv) {
  int fds[2];
  RLAIF_CHECK(::pipe(fds) == 0, "cannot start ", argv[0], ": pipe failed: ", std::strerror(errno));
  const pid_t pid = spawn(argv, fds[1], -1, fds[0]);
  ::close(fds[1]);
  ProcessResult result;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      result.out.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  result.exit_code = wait_for(pid);
  return result;
}

ServedModel::ServedModel(const std::string& model_dir, const std::string& name,
                         const std::string& log_path)
    : name_(name) {
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  RLAIF_CHECK(log >= 0, "cannot open ", log_path, ": ", std::strerror(errno));
  int fds[2];
  RLAIF_CHECK(::pipe(fds) == 0, "cannot start rlaif serve: pipe failed: ", std::strerror(errno));
  pid_ = spawn(
      {own_executable(), "serve", "--model", model_dir, "--name", name, "--port", "0", "--quiet"},
      fds[1], log, fds[0]);
  ::close(fds[1]);
  ::close(log);
  // The first stdout line says where it listens: "listening on http://127.0.0.1:PORT".
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[256];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  const std::string prefix = "listening on ";
  const size_t at = line.find(prefix), end = line.find('\n');
  if (at == std::string::npos || end == std::string::npos) {
    ::kill(pid_, SIGTERM);
    wait_for(pid_);
    pid_ = -1;
    throw Error("rlaif serve of " + model_dir + " did not start; its log is " + log_path);
  }
  api_base_ = line.substr(at + prefix.size(), end - at - prefix.size()) + "/v1";
}

ServedModel::~ServedModel() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    wait_for(pid_);
  }
}

std::string shell_quote(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) out += ' ';
    const bool plain = !a.empty() && a.find_first_not_of(
                                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
                                         "OPQRSTUVWXYZ0123456789_-./:=,+@%") == std::string::npos;
    if (plain) {
      out += a;
    } else {
      out += '\'';
      for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
      out += '\'';
    }
  }
  return out;
}

}  // namespace rlaif::cli
