#!/usr/bin/env bash
# --larv-cache FILE (mpi/proxy_cache.h): LARV's per-matrix proxies kept in a
# file and reused, never trusted.
#  - every method, at 1, 2 and 3 ranks: no cache, a cold cache (written) and a
#    warm one (proxies from the cache, as the report says) give the same bytes;
#    a warm run reads what a run with --larv off reads (no analysis reads);
#  - a cache made by one method is reused by every other one (same bytes as
#    that method without a cache), also one made at another rank count;
#  - stale (a proxy matrix's bytes changed, same size and mtime), foreign
#    (another pool), truncated, bit-flipped, another format version, another
#    proxy set, another precision, other BLAS threads: a warning naming the file
#    and why, the proxies computed, the result unchanged, the cache replaced;
#  - the cache path equal to an input, the output or the report: exit 64;
#  - the job key larv_cache (relative to the job file); --resume after a kill
#    with a warm cache gives the uninterrupted run's bytes.
# The reference everywhere is the same merge without a cache.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$work"
$LARV synth --arch tiny --tasks 3 --seed 5 --out pool --quiet
$LARV synth --arch tiny --tasks 3 --seed 6 --out other --quiet
pool() { echo --base "$1/base.safetensors" --task "$1/task01.safetensors" \
  --task "$1/task02.safetensors" --task "$1/task03.safetensors"; }
# from_cache REPORT: true / false (the report's summary.larv_cache)
from_cache() { /usr/bin/python3 -c "import json,sys; print(str(json.load(open(sys.argv[1]))['summary']['larv_cache']['proxies_from_cache']).lower())" "$1"; }
bytes_read() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['summary']['bytes_read'])" "$1"; }
methods=(ta ties tsv iso-c iso-cts)

# 1. no cache, cold, warm: the same bytes, every method, 1 2 3 ranks; at 2
#    ranks the cache each method leaves is then reused by the next method
#    (warm, the same bytes as that method without a cache)
$MPIEXEC -np 2 $LARV merge $(pool pool) --method ta --larv off --out off.safetensors --report off.json --quiet >/dev/null
for np in 1 2 3; do
  for m in "${methods[@]}"; do
    larv_at $np merge $(pool pool) --method $m --out ref-$m-$np.safetensors --quiet >/dev/null
  done
  for i in 0 1 2 3 4; do
    m=${methods[$i]} next=${methods[$(( (i + 1) % 5 ))]}
    rm -f c.pxc
    check larv_at $np merge $(pool pool) --method $m --larv-cache c.pxc --out cold.safetensors \
      --report cold.json --quiet
    check test "$(from_cache cold.json)" = false
    check cmp -s cold.safetensors ref-$m-$np.safetensors
    larv_at $np merge $(pool pool) --method $m --larv-cache c.pxc --out warm.safetensors \
      --report warm.json >warm.log 2>&1 || { echo "FAIL: warm $m np $np"; cat warm.log; fail=$((fail+1)); }
    check grep -q "LARV proxies from cache c.pxc" warm.log
    check test "$(from_cache warm.json)" = true
    check cmp -s warm.safetensors ref-$m-$np.safetensors
    if [ $np = 2 ]; then
      [ $m = ta ] && check test "$(bytes_read warm.json)" = "$(bytes_read off.json)" # no analysis reads
      check $MPIEXEC -np 2 $LARV merge $(pool pool) --method $next --larv-cache c.pxc --out y.safetensors \
        --report y.json --quiet
      check test "$(from_cache y.json)" = true
      check cmp -s y.safetensors ref-$next-2.safetensors
    fi
  done
done
# made at 3 ranks (the last loop), reused at 1
check $LARV merge $(pool pool) --method iso-c --larv-cache c.pxc --out y.safetensors --report y.json --quiet
check test "$(from_cache y.json)" = true
check cmp -s y.safetensors ref-iso-c-1.safetensors
check $LARV verify y.safetensors
echo "  cold, warm and no cache agree for every method at 1, 2 and 3 ranks; a cache is reused by other methods"

# 3. caches that must not be used: a warning naming the file and the reason,
#    the same bytes as without a cache, and the file replaced (the next run warm)
# expect_recompute WHY-REGEX MERGE-ARGS...: runs at 2 ranks against ref.safetensors
expect_recompute() {
  local why=$1; shift
  $MPIEXEC -np 2 $LARV merge "$@" --larv-cache c.pxc --out r.safetensors --report r.json \
    --quiet >r.log 2>&1 || { echo "FAIL: run ($why)"; cat r.log; fail=$((fail+1)); return; }
  check grep -qE "warning: LARV proxy cache c.pxc .*$why" r.log || cat r.log
  check test "$(from_cache r.json)" = false
  check cmp -s r.safetensors ref.safetensors
}
rm -f good.pxc; $MPIEXEC -np 2 $LARV merge $(pool pool) --method iso-c --larv-cache good.pxc \
  --out x.safetensors --quiet
fresh() { cp good.pxc c.pxc; }
cp ref-iso-c-2.safetensors ref.safetensors
fresh; head -c -13 c.pxc >t && mv t c.pxc
expect_recompute "truncated or damaged" $(pool pool) --method iso-c
# the file was replaced: the next run takes its proxies from it
$MPIEXEC -np 2 $LARV merge $(pool pool) --method iso-c --larv-cache c.pxc --out r2.safetensors \
  --report r2.json --quiet
check test "$(from_cache r2.json)" = true
check cmp -s r2.safetensors ref.safetensors
fresh; /usr/bin/python3 -c "
import sys; b=bytearray(open('c.pxc','rb').read()); b[len(b)//2]^=0x10; open('c.pxc','wb').write(b)"
expect_recompute "truncated or damaged" $(pool pool) --method iso-c
fresh; /usr/bin/python3 -c "
b=bytearray(open('c.pxc','rb').read()); b[8]=7; open('c.pxc','wb').write(b)"
expect_recompute "format version 7, this larv reads 1" $(pool pool) --method iso-c
fresh; printf 'not a cache at all\n' >c.pxc
expect_recompute "not a larv proxy cache" $(pool pool) --method iso-c
: >c.pxc
expect_recompute "truncated" $(pool pool) --method iso-c

# another proxy set, another precision: each against its own reference
$MPIEXEC -np 2 $LARV merge $(pool pool) --method iso-c --larv-proxy '*' --out ref.safetensors --quiet
fresh; expect_recompute "another proxy set" $(pool pool) --method iso-c --larv-proxy '*'
$MPIEXEC -np 2 $LARV merge $(pool pool) --method iso-c --precision single --out ref.safetensors --quiet
fresh; expect_recompute "precision double" $(pool pool) --method iso-c --precision single
# TSV-M in single precision computes its proxies its own way: its own cache
$MPIEXEC -np 2 $LARV merge $(pool pool) --method tsv --precision single --out ref.safetensors --quiet
rm -f c.pxc; $MPIEXEC -np 2 $LARV merge $(pool pool) --method ta --precision single --larv-cache c.pxc \
  --out x.safetensors --quiet
expect_recompute "route" $(pool pool) --method tsv --precision single

# foreign: another pool of the same layout
$MPIEXEC -np 2 $LARV merge $(pool other) --method iso-c --out ref.safetensors --quiet
fresh; expect_recompute "made for" $(pool other) --method iso-c

# other BLAS threads (the bits of the proxies may depend on them)
if [ "$(nproc)" -ge 2 ]; then
  cp ref-iso-c-2.safetensors ref.safetensors
  fresh
  $MPIEXEC -np 2 -x OPENBLAS_NUM_THREADS=2 $LARV merge $(pool pool) --method iso-c --larv-cache c.pxc \
    --out r.safetensors --report r.json --quiet >r.log 2>&1 || true
  if grep -q "BLAS threads" r.log; then
    check grep -qE "warning: LARV proxy cache c.pxc .*computed with 1 BLAS threads, this run has 2" r.log
    check test "$(from_cache r.json)" = false
  else
    echo "  (OpenBLAS runs 1 thread here: the thread check is not exercised)"
  fi
fi

# stale: one byte of a proxy matrix (layer 1's mlp.fc1) changed in a task,
# size and mtime kept: tried, caught by the input hashes, merged again
rm -rf p2; cp -a pool p2
fresh_p2() { rm -f c.pxc; $MPIEXEC -np 2 $LARV merge $(pool p2) --method $1 --larv-cache c.pxc \
  --out x.safetensors --quiet; }
for m in iso-c; do
  rm -rf p2; cp -a pool p2
  fresh_p2 $m
  /usr/bin/python3 - p2/task02.safetensors <<'EOF'
import json, struct, sys, os
p = sys.argv[1]; st = os.stat(p)
b = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
o = h['vision_model.encoder.layers.1.mlp.fc1.weight']['data_offsets'][0] + 8 + n
b[o + 2] ^= 0x01  # the low mantissa bits of one float32
open(p, 'wb').write(b)
os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
EOF
  $MPIEXEC -np 2 $LARV merge $(pool p2) --method $m --out ref.safetensors --quiet
  $MPIEXEC -np 2 $LARV merge $(pool p2) --method $m --larv-cache c.pxc --out r.safetensors \
    --report r.json --quiet >r.log 2>&1 || { echo "FAIL: stale run"; cat r.log; fail=$((fail+1)); }
  check grep -qE "LARV proxy cache c.pxc: stale: tensor 'vision_model.encoder.layers.1.mlp.fc1.weight' of p2/task02.safetensors changed" r.log
  check grep -q "merging again without it" r.log
  check test "$(from_cache r.json)" = false
  check cmp -s r.safetensors ref.safetensors
  check test -z "$(compgen -G 'r.safetensors.larv-*' || true)"
  $MPIEXEC -np 2 $LARV merge $(pool p2) --method $m --larv-cache c.pxc --out r2.safetensors \
    --report r2.json --quiet
  check test "$(from_cache r2.json)" = true
  check cmp -s r2.safetensors ref.safetensors
done
echo "  stale, foreign, damaged and mismatched caches are recomputed"

# 4. the cache is never an input or another output (exit 64, nothing written)
for c in pool/task01.safetensors out.safetensors out.json; do
  rc=0; $MPIEXEC -np 2 $LARV merge $(pool pool) --method ta --larv-cache $c --out out.safetensors \
    --report out.json --quiet >e.log 2>&1 || rc=$?
  check test $rc = 64
  check grep -q "LARV proxy cache" e.log
  check test ! -e out.safetensors
done
cmp -s pool/task01.safetensors p2/task01.safetensors && check true || check false

# 5. the job key, relative to the job file
mkdir -p jobs
cat >jobs/j.yaml <<EOF
method: tsv
base: ../pool/base.safetensors
tasks: [../pool/task01.safetensors, ../pool/task02.safetensors, ../pool/task03.safetensors]
out: ../j.safetensors
report: ../j.json
larv_cache: ../jc.pxc
quiet: true
EOF
grep -v larv_cache jobs/j.yaml | sed 's/j\.safetensors/j0.safetensors/; s/j\.json/j0.json/' >jobs/j0.yaml
$MPIEXEC -np 2 $LARV merge --job jobs/j0.yaml
check $MPIEXEC -np 2 $LARV merge --job jobs/j.yaml
check test -s jc.pxc
check test "$(from_cache j.json)" = false
check $MPIEXEC -np 2 $LARV merge --job jobs/j.yaml
check test "$(from_cache j.json)" = true
check cmp -s j.safetensors j0.safetensors

# 6. --resume with a warm cache: killed midway, resumed, the same bytes
rm -f c.pxc
$MPIEXEC -np 2 $LARV merge $(pool pool) --method iso-cts --larv-cache c.pxc --out x.safetensors --quiet
LARV_TEST_SLOW_WRITE_MS=150 timeout 120 $MPIEXEC -np 2 $LARV merge $(pool pool) --method iso-cts \
  --larv-cache c.pxc --out k.safetensors --quiet >k.log 2>&1 &
mp=$!
for _ in $(seq 600); do
  [ "$(cat k.safetensors.larv-tmp.journal.1 2>/dev/null | wc -l)" -ge 4 ] && break
  sleep 0.05
done
victim=""
for _ in $(seq 40); do
  for p in $(pgrep -x larv || true); do
    if grep -qa -- "k.safetensors" /proc/$p/cmdline 2>/dev/null &&
       tr '\0' '\n' </proc/$p/environ 2>/dev/null | grep -qE '^(OMPI_COMM_WORLD_RANK|PMI_RANK|PMIX_RANK)=1$'; then
      victim=$p
    fi
  done
  [ -n "$victim" ] && break
  sleep 0.1
done
if [ -n "$victim" ]; then
  kill -KILL "$victim"; wait $mp || true
  check test ! -e k.safetensors
  $MPIEXEC -np 2 $LARV merge $(pool pool) --method iso-cts --larv-cache c.pxc --out k.safetensors \
    --resume --report k.json >k2.log 2>&1 || { echo "FAIL: resume"; cat k2.log; fail=$((fail+1)); }
  check grep -qE "resume: skipped [1-9][0-9]* of" k2.log
  check test "$(from_cache k.json)" = true
  check cmp -s k.safetensors ref-iso-cts-2.safetensors
else
  wait $mp || true
  echo "FAIL: no rank 1 to kill"; fail=$((fail+1))
fi

finish
