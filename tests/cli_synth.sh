#!/usr/bin/env bash
# larv synth end to end: tiny x 3 tasks at 1 and 2 ranks in safetensors and
# HDF5; the two runs must agree (safetensors byte for byte; HDF5 by h5diff,
# since HDF5 object headers may carry timestamps); dtype, naming and errors.
# env: LARV (binary), MPIEXEC (mpirun + flags).
set -u
LARV=${LARV:?set LARV to the larv binary}
MPIEXEC=${MPIEXEC:-mpirun --oversubscribe}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if "$@"; then ok; else bad "$*"; fi; }

for fmt in safetensors h5; do
  for np in 1 2; do
    if $MPIEXEC -np $np "$LARV" synth --arch tiny --tasks 3 --seed 11 --out "$work/$fmt-np$np" \
         --format $fmt >"$work/log-$fmt-$np" 2>&1; then ok; else bad "synth $fmt np=$np"; cat "$work/log-$fmt-$np"; fi
    for f in base task01 task02 task03; do
      check test -s "$work/$fmt-np$np/$f.$fmt"
    done
    check test ! -e "$work/$fmt-np$np/task04.$fmt"
  done
  for f in base task01 task02 task03; do
    a="$work/$fmt-np1/$f.$fmt" b="$work/$fmt-np2/$f.$fmt"
    if [ $fmt = safetensors ]; then
      check cmp -s "$a" "$b"
    elif command -v h5diff >/dev/null; then
      check h5diff -q "$a" "$b"
    fi
  done
  grep -q "file 4 of 4" "$work/log-$fmt-1" && ok || bad "progress lines ($fmt)"
done
# the same run again is identical; a different seed or task is not
"$LARV" synth --arch tiny --tasks 3 --seed 11 --out "$work/again" --quiet >"$work/log-q" 2>&1
check cmp -s "$work/again/task02.safetensors" "$work/safetensors-np1/task02.safetensors"
check test ! -s "$work/log-q"
"$LARV" synth --arch tiny --tasks 2 --seed 12 --out "$work/seed12" --quiet
if cmp -s "$work/seed12/task02.safetensors" "$work/safetensors-np1/task02.safetensors"; then bad "seed ignored"; else ok; fi
if cmp -s "$work/safetensors-np1/task01.safetensors" "$work/safetensors-np1/task02.safetensors"; then bad "tasks equal"; else ok; fi
# F16 / BF16 halve the data
"$LARV" synth --arch tiny --tasks 1 --seed 11 --out "$work/bf16" --dtype BF16 --quiet
check test -s "$work/bf16/task01.safetensors"
s32=$(stat -c %s "$work/safetensors-np1/base.safetensors") s16=$(stat -c %s "$work/bf16/base.safetensors")
check test $((s16 * 10)) -lt $((s32 * 6))
grep -q '"BF16"' "$work/bf16/base.safetensors" && ok || bad "BF16 dtype in header"
# more than 99 tasks: three digits
"$LARV" synth --arch tiny --tasks 100 --seed 1 --out "$work/many" --quiet
check test -s "$work/many/task001.safetensors"
check test -s "$work/many/task100.safetensors"
# errors: message and exit code
"$LARV" synth --arch vit-z-99 --tasks 3 --seed 1 --out "$work/x" >"$work/err1" 2>&1; rc=$?
check test $rc -eq 64
grep -q "vit-z-99" "$work/err1" && grep -q "vit-b-32" "$work/err1" && ok || bad "unknown arch message: $(cat "$work/err1")"
"$LARV" synth --arch tiny --tasks 0 --seed 1 --out "$work/x" >"$work/err2" 2>&1; rc=$?
check test $rc -eq 64
grep -q -- "--tasks" "$work/err2" && ok || bad "tasks message"
mkdir -p "$work/ro"; touch "$work/ro/file"
"$LARV" synth --arch tiny --tasks 1 --seed 1 --out "$work/ro/file/sub" >"$work/err3" 2>&1; rc=$?
check test $rc -eq 74
grep -q "ro/file" "$work/err3" && ok || bad "unwritable message: $(cat "$work/err3")"
"$LARV" synth --help >"$work/help" 2>&1; rc=$?
check test $rc -eq 0
grep -q "example" "$work/help" && ok || bad "help has an example"
"$LARV" synth --arch tiny --tasks 1 --seed 1 --out "$work/y" --format zip >/dev/null 2>&1; rc=$?
check test $rc -eq 64

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
