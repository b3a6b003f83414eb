# Sourced by the data-parallel command-line tests (tests/cli/*_mpi.sh) after `rlaif="$1"`:
# skips the test (exit 77) where mpirun or rlaif's MPI support is missing, and sets up Open MPI
# for CI's containers.
command -v mpirun >/dev/null || { echo "mpirun not found: skipping"; exit 77; }
"$rlaif" version | grep -q '^MPI: yes' || { echo "rlaif was built without MPI: skipping"; exit 77; }
# As root (CI's container) Open MPI needs these; on fewer cores than ranks, oversubscription; in
# containers, the shared-memory transport without ptrace-based single copies.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
# Under AddressSanitizer (tools/test.sh --sanitize) Open MPI's own plugins leak a few KB that are
# unloaded before LeakSanitizer reports, so leaks are checked in the 1-process runs only.
mpirun() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" command mpirun -x ASAN_OPTIONS "$@"; }
export OMP_WAIT_POLICY=passive  # two ranks' spinning OpenMP threads would starve each other
