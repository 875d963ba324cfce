# The preamble that the tests/cli_*.sh scripts share. Sourced, never run:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# It sets bash's strict mode, requires LARV (the binary), LARV_SRC (the source
# tree) and MPIEXEC (mpirun and its flags), as ctest sets them, and gives:
#   $work            a temporary directory, removed when the script exits
#   $PY              Debian's python3 (the one with numpy)
#   pass, fail       the counters, and to count with:
#   ok [WHAT]        a check passed (prints "ok   WHAT" when WHAT is given)
#   bad WHAT         a check failed (prints "FAIL: WHAT")
#   check CMD...     runs CMD: ok when it succeeds, else bad naming CMD
#   check_that WHAT CMD...  the same, bad naming WHAT
#   larv_at NP ARGS  larv ARGS at NP ranks (1: one process, without mpirun)
#   finish           prints "N passed, N failed"; its status (the script's last
#                    command) is non-zero when any check failed
set -euo pipefail
: "${LARV:?} ${LARV_SRC:?} ${MPIEXEC:?}"
PY=/usr/bin/python3
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); if [ $# -gt 0 ]; then echo "ok   $*"; fi; }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
check() { if "$@"; then ok; else bad "$*"; fi; }
check_that() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
larv_at() { local np=$1; shift; if [ "$np" = 1 ]; then $LARV "$@"; else $MPIEXEC -np "$np" $LARV "$@"; fi; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; }
