#!/usr/bin/env bash
# Hostile and wrong input to `larv merge`, end to end at 2 ranks: every case is
# refused with the documented exit code (src/err.h: 64 usage / job file, 65 bad
# data, 66 missing input, 74 output not writable), a message naming the file
# (and the tensor, where one is at fault), no hang, no file at the target and
# no temporary (OUT.larv-tmp) or resume journal left behind. A merge that fails
# over an existing output leaves that file byte-identical.
# The full-disk case mounts a 300 KiB tmpfs (root only; skipped otherwise).
# Cases where ranks matter (a defect only one rank reads, a write that fails on
# one rank) run at 2 ranks (NP=2); the others as a single process, to stay fast.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mounts=()
cleanup() { for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
$LARV synth --arch tiny --tasks 2 --seed 7 --out pool --quiet
B=pool/base.safetensors T1=pool/task01.safetensors T2=pool/task02.safetensors
W=vision_model.encoder.layers.1.mlp.fc1.weight   # a block matrix
V=vision_model.encoder.layers.1.mlp.fc1.bias     # a vector

# mut.py MODE SRC DST [TENSOR]: a copy of a safetensors file with one defect
cat >mut.py <<'EOF'
import json, math, struct, sys
mode, src, dst = sys.argv[1:4]
arg = sys.argv[4] if len(sys.argv) > 4 else None
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]; hdr = json.loads(f.read(n)); data = bytearray(f.read())
if mode == "rename":
    hdr[arg + ".renamed"] = hdr.pop(arg)
elif mode == "shape":
    hdr[arg]["shape"] = hdr[arg]["shape"][::-1]
elif mode == "dtype":
    hdr[arg]["dtype"] = "I32"
elif mode in ("nan", "inf"):
    b = hdr[arg]["data_offsets"][0]; data[b:b + 4] = struct.pack("<f", math.nan if mode == "nan" else -math.inf)
elif mode == "truncate":
    data = data[:len(data) - 1000]
elif mode == "reversed":
    e = hdr[arg]["data_offsets"]; hdr[arg]["data_offsets"] = [e[1], e[0]]
h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h); f.write(data)
EOF

# expect NAME CODE "TEXT1|TEXT2..." OUT -- larv merge args (OUT is checked
# afterwards: absent, or byte-identical to OUT.before when that exists)
expect() {
  local name=$1 code=$2 texts=$3 out=$4; shift 5
  local rc=0
  if [ "${NP:-1}" = 1 ]; then
    timeout 120 $LARV merge --quiet "$@" >out.log 2>&1 || rc=$?
  else
    timeout 120 $MPIEXEC -np "$NP" $LARV merge --quiet "$@" >out.log 2>&1 || rc=$?
  fi
  [ "$rc" != 124 ] || echo "HANG: $name"
  local why=""
  [ "$rc" = "$code" ] || why="exit $rc, expected $code"
  IFS='|' read -ra want <<<"$texts"
  for t in "${want[@]}"; do
    grep -qF -- "larv merge: " out.log && grep -F -- "larv merge: " out.log | grep -qF -- "$t" ||
      why="$why; message lacks '$t'"
  done
  if [ -e "$out.before" ]; then
    cmp -s "$out" "$out.before" || why="$why; the earlier $out was changed"
  elif [ -e "$out" ]; then
    why="$why; $out was written"
  fi
  local left
  left=$(compgen -G "$out.larv-tmp*" || true)
  [ -z "$left" ] || why="$why; left behind: $left"
  if [ -z "$why" ]; then
    pass=$((pass+1)); echo "ok   $name: $(grep -F 'larv merge: ' out.log | head -1)"
  else
    fail=$((fail+1)); echo "FAIL $name: ${why#; }"; cat out.log
  fi
}

# -- malformed safetensors (the io layer's fuzzed parser, once end to end)
$PY mut.py truncate $T2 trunc.safetensors
expect truncated 65 "trunc.safetensors|visual_projection.weight|truncated" o.safetensors -- \
  --method ta --base $B --task $T1 --task trunc.safetensors --out o.safetensors
$PY mut.py reversed $T2 rev.safetensors $W
expect reversed-offsets 65 "rev.safetensors|$W|reversed" o.safetensors -- \
  --method ta --base $B --task $T1 --task rev.safetensors --out o.safetensors
printf 'not a checkpoint at all' >garbage.safetensors
expect garbage 65 "garbage.safetensors" o.safetensors -- \
  --method ta --base $B --task $T1 --task garbage.safetensors --out o.safetensors

# -- broken HDF5 (no tensor can be named when the file itself does not open)
$LARV convert $T2 t2.h5 >/dev/null
head -c 400000 t2.h5 >trunc.h5
expect h5-truncated 65 "trunc.h5" o.h5 -- --method ta --base $B --task $T1 --task trunc.h5 --out o.h5
$PY -c "b=bytearray(open('t2.h5','rb').read()); b[0:8]=b'XXXXXXXX'; open('nosig.h5','wb').write(b)"
expect h5-signature 65 "nosig.h5|not an HDF5 file" o.h5 -- --method ta --base $B --task $T1 --task nosig.h5 --out o.h5

# -- a missing shard
mkdir -p sh
$LARV convert $T2 sh/t2.safetensors.index.json --shard-size 300K >/dev/null
rm sh/t2-00002-of-00004.safetensors
expect missing-shard 66 "sh/t2.safetensors.index.json|t2-00002-of-00004.safetensors|tensor '" o.safetensors -- \
  --method ta --base $B --task $T1 --task sh/t2.safetensors.index.json --out o.safetensors
expect missing-file 66 "nothere.safetensors" o.safetensors -- \
  --method ta --base $B --task $T1 --task nothere.safetensors --out o.safetensors

# -- tensors that differ across the pool in name, shape, dtype
for m in rename shape dtype; do
  $PY mut.py $m $T2 $m.safetensors $W
  NP=$([ $m = shape ] && echo 2 || echo 1) expect "differ-$m" 65 "$m.safetensors|$W" o.safetensors -- \
    --method iso-c --base $B --task $T1 --task $m.safetensors --out o.safetensors
done

# -- NaN / Inf in a task vector: refused by default (the check runs in the
#    analysis and in the write pass), accepted with --allow-nonfinite
$PY mut.py nan $T2 nanw.safetensors $W
NP=2 expect nan-matrix 65 "nanw.safetensors|$W|NaN or Inf" o.safetensors -- \
  --method iso-c --base $B --task $T1 --task nanw.safetensors --out o.safetensors
$PY mut.py inf $T2 infv.safetensors $V
expect inf-vector 65 "infv.safetensors|$V|NaN or Inf" o.safetensors -- \
  --method ta --base $B --task $T1 --task infv.safetensors --out o.safetensors
$PY mut.py nan $T2 nanv.safetensors $V
expect nan-ties 65 "nanv.safetensors|$V|NaN or Inf" o.safetensors -- \
  --method ties --base $B --task $T1 --task nanv.safetensors --out o.safetensors
# accepted NaN still cannot go through an SVD: a clear refusal, not a LAPACK error
NP=2 expect nan-factor 65 "nanw.safetensors|$W|no SVD can factor" o.safetensors -- \
  --method tsv --base $B --task $T1 --task nanw.safetensors --out o.safetensors --allow-nonfinite
if $MPIEXEC -np 2 $LARV merge --quiet --method ta --base $B --task $T1 --task nanv.safetensors \
     --out nan-ok.safetensors --allow-nonfinite >out.log 2>&1 && [ -e nan-ok.safetensors ]; then
  pass=$((pass+1)); echo "ok   allow-nonfinite: accepted"
else
  fail=$((fail+1)); echo "FAIL allow-nonfinite: refused"; cat out.log
fi

# -- usage errors: empty pool, a task twice, the output equal to an input
expect proxy-nomatch 64 "block 0|--larv-proxy" o.safetensors -- --method ta --base $B --task $T1 \
  --larv-proxy '*nothing*' --out o.safetensors
expect empty-pool 64 "the task pool is empty" o.safetensors -- --method ta --base $B --out o.safetensors
expect task-twice 64 "$T1|twice" o.safetensors -- --method ta --base $B --task $T1 --task ./$T1 --out o.safetensors
expect base-as-task 64 "twice" o.safetensors -- --method ta --base $B --task $T1 --task $B --out o.safetensors
cp $T1 $T1.before
expect out-is-input 64 "$T1|also an input" $T1 -- --method ta --base $B --task $T1 --task $T2 --out $T1
# (the input it would have overwritten is untouched: $T1 is compared below)

# -- unwritable output locations
expect no-dir 74 "nodir/o.safetensors|does not exist" nodir/o.safetensors -- \
  --method ta --base $B --task $T1 --out nodir/o.safetensors
touch afile
expect not-a-dir 74 "afile/o.safetensors" afile/o.safetensors -- \
  --method ta --base $B --task $T1 --out afile/o.safetensors
mkdir -p ro full
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o ro,size=64k tmpfs ro 2>/dev/null; then
  mounts+=("$work/ro")
  expect read-only-fs 74 "ro/o.safetensors|not writable" ro/o.safetensors -- \
    --method ta --base $B --task $T1 --out ro/o.safetensors
else
  echo "skip read-only-fs: cannot mount a tmpfs here"
fi
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=300k tmpfs full 2>/dev/null; then
  mounts+=("$work/full")
  # an earlier (small) output is there: it must survive byte for byte
  head -c 1000 /dev/urandom >full/o.safetensors; cp full/o.safetensors full/o.safetensors.before
  NP=2 expect disk-full-safetensors 74 "full/o.safetensors.larv-tmp|No space left|tensor '" full/o.safetensors -- \
    --method ta --base $B --task $T1 --out full/o.safetensors
  expect disk-full-h5 74 "full/o.h5.larv-tmp|tensor '" full/o.h5 -- \
    --method ta --base $B --task $T1 --out full/o.h5
else
  echo "skip disk-full: cannot mount a small tmpfs here (not root?)"
fi

# -- a failing merge leaves an earlier output byte-identical (atomic rename)
$LARV merge --quiet --method ta --base $B --task $T1 --out keep.safetensors >/dev/null
cp keep.safetensors keep.safetensors.before
NP=2 expect keeps-earlier-nan 65 "nanv.safetensors|$V" keep.safetensors -- \
  --method ta --base $B --task $T1 --task nanv.safetensors --out keep.safetensors
expect keeps-earlier-shape 65 "shape.safetensors|$W" keep.safetensors -- \
  --method ta --base $B --task $T1 --task shape.safetensors --out keep.safetensors
LARV_TEST_FAIL_RANK=1 NP=2 expect keeps-earlier-rank-fails 74 "rank 1|LARV_TEST_FAIL_RANK" keep.safetensors -- \
  --method ta --base $B --task $T1 --task $T2 --out keep.safetensors

# -- job files: unknown keys and wrong types, named with the line
jobfile() { printf 'method: ta\nbase: pool/base.safetensors\ntasks:\n  - pool/task01.safetensors\nout: o.safetensors\n%s\n' "$1" >"$2"; }
jobfile 'lamda: 0.3' j-unknown.yaml
expect job-unknown-key 64 "j-unknown.yaml:6:|'lamda'|unknown" o.safetensors -- --job j-unknown.yaml
jobfile 'lambda: "high"' j-type.yaml
expect job-wrong-type 64 "j-type.yaml:6:|'lambda'|expected a number" o.safetensors -- --job j-type.yaml
jobfile 'larv:
  eta: [1, 2]' j-nested.yaml
expect job-nested-type 64 "j-nested.yaml:7:|'larv.eta'" o.safetensors -- --job j-nested.yaml
jobfile 'tasks: again' j-dup.yaml
expect job-duplicate-key 64 "j-dup.yaml:6:|'tasks'" o.safetensors -- --job j-dup.yaml

# the inputs were never touched
for f in $B $T1 $T2; do
  $LARV verify "$f" >/dev/null 2>&1 || $LARV inspect "$f" >/dev/null || { fail=$((fail+1)); echo "FAIL $f damaged"; }
done
finish
