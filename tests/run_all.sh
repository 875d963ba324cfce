#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what is missing,
# builds larv, and runs
#   1. every test (unit, MPI at 1/2/4 ranks, CLI, fuzz-corpus replay) in build/;
#   2. all of them again under AddressSanitizer + UBSan (larv itself too), then
#      the ASan CLI tests once more with a busy loop on every core;
#   3. the read-ahead tests under ThreadSanitizer;
#   4. each libFuzzer target for a short time (LARV_FUZZ_SECONDS, default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
bash .ci/deps.sh test
jobs=$(nproc)

echo "== tests (Release build) =="
(cd build && ctest --output-on-failure -j"$jobs")

echo "== tests under AddressSanitizer + UBSan =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLARV_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ctest --output-on-failure -j"$jobs")

echo "== the ASan CLI tests again, every core busy (LeakSanitizer at exit, issue #10) =="
bash tests/asan_under_load.sh build-asan

echo "== the read-ahead thread under ThreadSanitizer =="
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DLARV_TSAN=ON >/dev/null
cmake --build build-tsan -j"$jobs" --target larv mpi_test_readahead >/dev/null
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/../tests/tsan.supp" \
   ctest --output-on-failure -R 'readahead')

if command -v clang >/dev/null; then
  echo "== libFuzzer (${LARV_FUZZ_SECONDS:-30} s per target) =="
  cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DLARV_FUZZ=ON -DLARV_SANITIZE=ON \
        -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-fuzz -j"$jobs" >/dev/null
  for f in build-fuzz/tests/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f"); name=${name#fuzz_}
    work=$(mktemp -d)
    cp -r "tests/corpus/$name/." "$work/" 2>/dev/null || true
    "$f" -max_total_time="${LARV_FUZZ_SECONDS:-30}" -max_len=65536 -print_final_stats=0 \
         -artifact_prefix="$work/" "$work" >"$work/log" 2>&1 \
      || { tail -40 "$work/log"; echo "fuzz target $name found a crash: see $work"; exit 1; }
    echo "fuzz $name: ok ($(grep -c . "$work/log" || true) log lines)"
  done
fi
echo "all test stages passed"
