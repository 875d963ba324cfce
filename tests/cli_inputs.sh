#!/usr/bin/env bash
# Inputs are what they claim, and messages name the right culprit, end to end:
#  - only regular files are read: a FIFO given as the base, a task, a job file
#    or to inspect / verify / convert is refused at once (exit 66, "FIFO"),
#    never waited on (every command runs under `timeout 60`; 124 fails);
#  - NaN in the base is reported as the base's, not as a task's;
#  - the same task twice through a hard link, or two tasks with identical
#    contents, are refused like a task given twice (exit 64); a task equal to the
#    base (a zero task vector) is merged with a warning;
#  - a merge whose result is not finite in the output dtype is refused naming
#    the tensor (exit 65), unless --allow-nonfinite;
#  - the spill file honours TMPDIR.
# Every refusal leaves nothing at the target and no temporary.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$work"
$LARV synth --arch tiny --tasks 2 --seed 11 --out pool --quiet
B=pool/base.safetensors T1=pool/task01.safetensors T2=pool/task02.safetensors
W=vision_model.encoder.layers.1.mlp.fc1.weight

# run NAME CODE "TEXT1|TEXT2" OUT -- command...: exit CODE, stderr has every TEXT,
# nothing at OUT (when OUT is not -) and no OUT.larv-tmp*
run() {
  local name=$1 code=$2 texts=$3 out=$4; shift 5
  local rc=0 why=""
  timeout 60 "$@" >log 2>&1 </dev/null || rc=$?
  [ "$rc" = "$code" ] || why="exit $rc, expected $code"
  IFS='|' read -ra want <<<"$texts"
  for t in "${want[@]}"; do grep -qF -- "$t" log || why="$why; message lacks '$t'"; done
  if [ "$out" != - ]; then
    [ ! -e "$out" ] || why="$why; $out was written"
    [ -z "$(compgen -G "$out.larv-tmp*" || true)" ] || why="$why; a temporary was left"
  fi
  if [ -z "$why" ]; then ok "$name: $(grep -m1 -E 'larv|warning' log || true)"
  else bad "$name: ${why#; }"; cat log; fi
}

# -- only regular files are read
mkfifo fifo.safetensors fifo.h5 fifo.yaml
run fifo-task 66 "fifo.safetensors|FIFO" o.safetensors -- \
  $LARV merge --quiet --method ta --base $B --task $T1 --task fifo.safetensors --out o.safetensors
run fifo-base-np2 66 "fifo.h5|FIFO" o.safetensors -- \
  $MPIEXEC -np 2 $LARV merge --quiet --method ta --base fifo.h5 --task $T1 --out o.safetensors
run fifo-job 66 "fifo.yaml|FIFO" - -- $LARV merge --job fifo.yaml
run fifo-inspect 66 "fifo.safetensors|FIFO" - -- $LARV inspect fifo.safetensors
run fifo-verify 66 "fifo.h5|FIFO" - -- $LARV verify fifo.h5
run fifo-convert 66 "fifo.safetensors|FIFO" c.h5 -- $LARV convert fifo.safetensors c.h5
mkdir dir.safetensors
run dir-task 66 "dir.safetensors|directory" o.safetensors -- \
  $LARV merge --quiet --method ta --base $B --task dir.safetensors --out o.safetensors

# -- the right culprit: NaN in the base is the base's (elementwise, factored,
#    TIES; at 2 ranks the tensor's owner reports it)
$PY - $B nanbase.safetensors "$W" <<'EOF'
import json, math, struct, sys
src, dst, name = sys.argv[1:4]
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]; h = f.read(n); d = bytearray(f.read())
b = json.loads(h)[name]["data_offsets"][0]; d[b:b + 4] = struct.pack("<f", math.nan)
open(dst, "wb").write(struct.pack("<Q", n) + h + d)
EOF
for m in ta iso-c ties; do
  run "nan-base-$m" 65 "nanbase.safetensors: tensor '$W': the base has NaN" o.safetensors -- \
    $MPIEXEC -np 2 $LARV merge --quiet --method $m --base nanbase.safetensors --task $T1 --task $T2 --out o.safetensors
  grep -q "task0" log && bad "nan-base-$m: a task is blamed" || true
done
run nan-base-factor 65 "nanbase.safetensors: tensor '$W': the base has NaN|no SVD" o.safetensors -- \
  $LARV merge --quiet --method tsv --allow-nonfinite --base nanbase.safetensors --task $T1 --task $T2 --out o.safetensors

# -- the same task twice through a hard link (device and inode, not the name)
ln $T1 hardlink.safetensors
run task-hardlink 64 "given twice" o.safetensors -- \
  $LARV merge --quiet --method ta --base $B --task $T1 --task hardlink.safetensors --out o.safetensors
ln $B base-link.safetensors
run base-hardlink-as-task 64 "given twice" o.safetensors -- \
  $LARV merge --quiet --method ta --base $B --task $T1 --task base-link.safetensors --out o.safetensors

# -- ill-posed pools: two tasks with identical contents (a copy: another inode)
#    are a task given twice, for every method and at 2 ranks; a task equal to
#    the base (a zero task vector) is merged with a warning, and the result
#    still does not depend on the rank count
cp $T1 copy.safetensors
for m in ta iso-c tsv iso-cts; do
  run "identical-$m" 64 "copy.safetensors has the same contents as $T1|given twice" o.safetensors -- \
    $MPIEXEC -np 2 $LARV merge --quiet --method $m --base $B --task $T1 --task $T2 --task copy.safetensors --out o.safetensors
done
cp $B zero.safetensors
for m in tsv iso-cts; do
  for np in 1 2; do
    run "zero-task-$m-np$np" 0 "warning: zero.safetensors equals the base|zero task vector" - -- \
      $MPIEXEC -np $np $LARV merge --quiet --method $m --base $B --task $T1 --task $T2 --task zero.safetensors --out z-$m-$np.safetensors
  done
  $PY "$LARV_SRC/tests/reference/compare.py" z-$m-1.safetensors z-$m-2.safetensors 1e-6 >log 2>&1 &&
    ok "zero-task-$m: 1 and 2 ranks agree" || { bad "zero-task-$m: 1 and 2 ranks differ"; cat log; }
done

# -- no silent Inf out: a result that is not finite in the output dtype (F32
#    here) is refused naming the tensor, unless --allow-nonfinite, which writes
#    it. lambda is bounded (the option table), so the tasks carry extreme but
#    finite F32 weights: tensor W scaled to |W| <= 1e38 in each task; the
#    merged W fits float64 but not F32.
$PY - $T1 big1.safetensors $T2 big2.safetensors "$W" <<'EOF'
import json, struct, sys, array
name = sys.argv[5]
for src, dst in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):
    with open(src, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]; h = f.read(n); d = bytearray(f.read())
    b, e = json.loads(h)[name]["data_offsets"]
    a = array.array("f"); a.frombytes(bytes(d[b:e]))
    k = 1e38 / max(abs(v) for v in a)
    a = array.array("f", (v * k for v in a)); d[b:e] = a.tobytes()
    open(dst, "wb").write(struct.pack("<Q", n) + h + d)
EOF
run nonfinite-ta-np2 65 "not finite in F32|tensor '$W'" o.safetensors -- \
  $MPIEXEC -np 2 $LARV merge --quiet --method ta --lambda 100 --base $B --task big1.safetensors --task big2.safetensors --out o.safetensors
run nonfinite-iso-c 65 "o.h5: tensor '|not finite in F32" o.h5 -- \
  $LARV merge --quiet --method iso-c --lambda 100 --base $B --task big1.safetensors --task big2.safetensors --out o.h5
run nonfinite-tsv 65 "o.safetensors: tensor '|not finite in F32" o.safetensors -- \
  $LARV merge --quiet --method tsv --lambda 100 --base $B --task big1.safetensors --task big2.safetensors --out o.safetensors
run allow-nonfinite-writes 0 "" - -- \
  $LARV merge --quiet --method ta --lambda 100 --allow-nonfinite --base $B --task big1.safetensors --task big2.safetensors --out inf.safetensors
$PY - inf.safetensors <<'EOF' && ok "allow-nonfinite: the output holds Inf" || bad "allow-nonfinite: no Inf written"
import json, struct, sys, array, math
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]; d = f.read()[n:]
a = array.array("f"); a.frombytes(d[:len(d) // 4 * 4])
assert any(math.isinf(v) for v in a)
EOF

# -- the spill file (LARV on, an SVD merger) goes to TMPDIR: it holds the
#    (unlinked) scratch file while the merge runs, seen through /proc/PID/fd.
#    (A missing TMPDIR cannot be tested here: Open MPI creates it as root.)
mkdir -p scratch
TMPDIR="$work/scratch" LARV_TEST_SLOW_WRITE_MS=200 timeout 120 \
  $LARV merge --quiet --method iso-c --base $B --task $T1 --task $T2 --out s.safetensors >slog 2>&1 &
mp=$!; seen=""
for _ in $(seq 600); do
  for p in $(pgrep -x larv || true); do
    grep -qa -- s.safetensors /proc/$p/cmdline 2>/dev/null || continue
    ls -l /proc/$p/fd 2>/dev/null | grep -q "$work/scratch/larv-scratch-" && seen=$p
  done
  [ -n "$seen" ] && break
  kill -0 $mp 2>/dev/null || break
  sleep 0.05
done
rc=0; wait $mp || rc=$?
[ -n "$seen" ] && [ $rc = 0 ] && [ -z "$(ls scratch | grep larv-scratch || true)" ] && ok "TMPDIR: the scratch file was in \$TMPDIR, nothing left" ||
  { bad "TMPDIR: scratch seen '${seen}', exit $rc, left: $(ls scratch | grep larv-scratch || true)"; cat slog; }

finish
