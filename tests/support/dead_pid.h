// A process id that no running process has: the id of a child that has exited and been reaped,
// as a crashed writer's temporaries carry it.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

namespace rlaif::test {

inline long dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

}  // namespace rlaif::test
