#!/usr/bin/env bash
# The AddressSanitizer tests that once failed at random (issue #10: the CLI
# tests, whose LeakSanitizer exit check crashed) run again with a busy loop on
# every core beside them, as CI machines are when other work shares them.
# Bounded: the whole run gets LARV_LOAD_SECONDS (default 1800) and each test its
# ctest timeout; the loops are killed on every exit path.
# usage: tests/asan_under_load.sh BUILD_DIR [CTEST_REGEX]
set -euo pipefail
build=${1:?usage: asan_under_load.sh BUILD_DIR [CTEST_REGEX]}
regex=${2:-'^(cli_convert|cli_faults|cli_job|cli_synth|asan_dtls)$'}
limit=${LARV_LOAD_SECONDS:-1800}
cores=$(nproc)
loops=()
stop_loops() {
  local p
  for p in "${loops[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${loops[@]}"; do wait "$p" 2>/dev/null || true; done
  loops=()
}
trap stop_loops EXIT
trap 'stop_loops; exit 130' INT TERM
for _ in $(seq "$cores"); do
  ( trap - EXIT INT TERM; while :; do :; done ) &
  loops+=($!)
done
echo "${#loops[@]} busy loops on $cores cores; tests: $regex (at most $limit s)"
cd "$build"
rc=0
timeout --kill-after=60 "$limit" ctest --output-on-failure -j"$cores" -R "$regex" || rc=$?
[ $rc -ne 124 ] || echo "asan_under_load: stopped after $limit s"
exit $rc
