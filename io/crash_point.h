// Crash points, for testing that files survive a process killed at any moment.
//
// Every step of a durable write (a file's bytes, its fsync, its rename over the old file, a
// directory's fsync or rename, a metrics line) first calls crash_point(). With RLAIF_CRASH_AT=N
// in the environment, the N-th call in the process kills it with SIGKILL, as `kill -9` or a
// power cut at that moment would. With RLAIF_CRASH_COUNT=1 the process prints, when it exits
// normally, how many calls it made ("rlaif: crash points: N" on stderr), so that a test can
// spread its kills over a whole run (tests/cli/crash_consistency.sh). Without either variable a
// call costs one comparison.
#pragma once

namespace rlaif {

void crash_point();

}  // namespace rlaif
