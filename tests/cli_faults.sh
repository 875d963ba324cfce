#!/usr/bin/env bash
# Faults at 2 ranks: a rank that fails ends the whole job promptly, with its
# reason on stderr, not a hang (every mpirun runs under `timeout 60`; 124 fails
# the test), and leaves no output, temporary or journal; a rank killed by a
# signal makes mpirun terminate, with no file at the target. And provenance:
# `larv verify` passes on a fresh merge and fails (exit 65, naming the tensor)
# after one byte of a tensor's data is flipped, in safetensors and HDF5.
#
# Test hooks (environment, read by every rank of larv merge):
#   LARV_TEST_FAIL_RANK=R      rank R fails at its first tensor write
#   LARV_TEST_SLOW_WRITE_MS=N  sleep N ms after each tensor written
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$work"
$LARV synth --arch tiny --tasks 3 --seed 7 --out pool --quiet
pool=(--base pool/base.safetensors --task pool/task01.safetensors --task pool/task02.safetensors
      --task pool/task03.safetensors)
W=vision_model.encoder.layers.1.mlp.fc1.weight
clean() { # out: nothing at the target, no temporary or journal
  [ ! -e "$1" ] && [ -z "$(compgen -G "$1.larv-tmp*" || true)" ]
}

# 1. one rank fails in the write pass (safetensors, HDF5): all end, reason shown
for out in fail.safetensors fail.h5; do
  rc=0; t0=$SECONDS
  LARV_TEST_FAIL_RANK=1 timeout 60 $MPIEXEC -np 2 $LARV merge "${pool[@]}" --method iso-c --out $out \
      --quiet >log 2>&1 || rc=$?
  if [ $rc = 124 ]; then bad "$out: hang after rank 1 failed"; cat log; continue; fi
  [ $rc = 74 ] && ok "$out: exit 74 in $((SECONDS - t0)) s" || { bad "$out: exit $rc, expected 74"; cat log; }
  grep -q "larv merge: rank 1: .*LARV_TEST_FAIL_RANK" log && ok "$out: rank 1's reason on stderr" ||
    { bad "$out: no reason"; cat log; }
  clean $out && ok "$out: nothing left" || bad "$out: leftovers: $(ls)"
done

# 2. a defect only one rank reads (NaN in a tensor owned by rank 1 of 2)
$PY - pool/task02.safetensors nan.safetensors "$W" <<'EOF'
import json, math, struct, sys
src, dst, name = sys.argv[1:4]
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]; h = f.read(n); d = bytearray(f.read())
b = json.loads(h)[name]["data_offsets"][0]; d[b:b + 4] = struct.pack("<f", math.nan)
open(dst, "wb").write(struct.pack("<Q", n) + h + d)
EOF
rc=0
timeout 60 $MPIEXEC -np 2 $LARV merge --base pool/base.safetensors --task pool/task01.safetensors \
    --task nan.safetensors --method tsv --out nan.h5 --quiet >log 2>&1 || rc=$?
[ $rc = 65 ] && grep -q "larv merge: rank [01]: nan.safetensors: tensor '$W'" log && clean nan.h5 &&
  ok "one-rank defect: exit 65, named, nothing left" || { bad "one-rank defect: exit $rc"; cat log; }

# 3. a rank killed by a signal while writing: mpirun ends, nothing at the target
#    (SIGKILL leaves the temporary for --resume: see cli_resume.sh)
for sig in KILL TERM; do
  for victim in 0 1; do
    out=sig-$sig-$victim.safetensors
    LARV_TEST_SLOW_WRITE_MS=100 timeout 60 $MPIEXEC -np 2 $LARV merge "${pool[@]}" --method ta --out $out \
        --quiet >log 2>&1 &
    mp=$!
    for _ in $(seq 400); do
      [ "$(cat $out.larv-tmp.journal.$victim 2>/dev/null | wc -l)" -ge 3 ] && break
      sleep 0.05
    done
    pid=""
    for p in $(pgrep -x larv || true); do
      grep -qa -- "$out" /proc/$p/cmdline 2>/dev/null &&
        tr '\0' '\n' </proc/$p/environ 2>/dev/null | grep -qE "^(OMPI_COMM_WORLD_RANK|PMIX_RANK)=$victim\$" &&
        pid=$p
    done
    if [ -z "$pid" ]; then bad "SIG$sig rank $victim: rank not found"; wait $mp || true; continue; fi
    kill -$sig $pid
    rc=0; wait $mp || rc=$?
    if [ $rc = 124 ]; then bad "SIG$sig rank $victim: mpirun hung"
    elif [ $rc = 0 ]; then bad "SIG$sig rank $victim: mpirun exited 0"
    elif [ -e $out ]; then bad "SIG$sig rank $victim: $out exists"
    else ok "SIG$sig to rank $victim: mpirun exited $rc, no $out"; fi
  done
done

# 4. provenance: verify passes, then fails naming the tensor after a byte flip
$LARV merge "${pool[@]}" --method ta --out v.safetensors --quiet >/dev/null
$LARV merge "${pool[@]}" --method ta --out v.h5 --quiet >/dev/null
for f in v.safetensors v.h5; do
  $LARV verify $f >log 2>&1 && ok "verify $f" || { bad "verify $f fails on a fresh merge"; cat log; }
done
# flip one byte inside W's data: safetensors by its offsets, HDF5 by finding
# the same bytes (both files hold identical tensor bytes)
$PY - "$W" <<'EOF'
import json, struct, sys
name = sys.argv[1]
with open("v.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); d = f.read()
b = h[name]["data_offsets"][0] + 1000
chunk = d[b:b + 64]
for fn, off in (("v.safetensors", 8 + n + b), ("v.h5", None)):
    x = bytearray(open(fn, "rb").read())
    if off is None:
        off = x.find(chunk); assert off > 0 and x.count(chunk) == 1, "tensor bytes not found in v.h5"
    x[off + 3] ^= 0x40
    open("bad-" + fn, "wb").write(x)
EOF
for f in bad-v.safetensors bad-v.h5; do
  rc=0; $LARV verify $f >log 2>&1 || rc=$?
  [ $rc = 65 ] && grep -q "$f: tensor '$W'.*CORRUPT" log && ok "verify $f: exit 65, names '$W'" ||
    { bad "verify $f: exit $rc"; cat log; }
done

finish
