#!/usr/bin/env bash
# `larv verify` cannot be fooled: a merged file passes; the same file with its
# checksum or provenance metadata removed, replaced by garbage or edited, with
# a checksum added for a tensor it lacks or in the older flat form, or with a
# tensor's dtype or shape changed over the same bytes, fails with exit 65 and
# a message naming what is wrong (the tensor, where one is at fault), and an
# edited provenance is never printed. Each case in safetensors and, converted
# with `larv convert` (which copies the metadata), in HDF5. And metadata of
# any size fits: long paths and patterns in a safetensors output.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$work"
$LARV synth --arch tiny --tasks 2 --seed 5 --out pool --quiet
W=vision_model.encoder.layers.1.mlp.fc1.weight
$MPIEXEC -np 2 $LARV merge --base pool/base.safetensors --task pool/task01.safetensors \
  --task pool/task02.safetensors --method ta --out m.safetensors --quiet >/dev/null

# edit.py MODE SRC DST: a copy of a safetensors file with its header edited
cat >edit.py <<'EOF'
import json, struct, sys
mode, src, dst, W = sys.argv[1:5]
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); d = f.read()
m = h["__metadata__"]
if mode == "no-checksums": del m["larv_checksums"]
elif mode == "garbage-checksums": m["larv_checksums"] = "\x01garbage{"
elif mode == "no-provenance": del m["larv_provenance"]
elif mode == "garbage-provenance": m["larv_provenance"] = "not json at all"
elif mode == "edited-provenance":
    p = json.loads(m["larv_provenance"]); p["method"] = "tsv"; p["lambda"] = 9.0
    m["larv_provenance"] = json.dumps(p)
elif mode == "flat-checksums":   # the older form: {name: hash}, nothing covering the metadata
    m["larv_checksums"] = json.dumps(json.loads(m["larv_checksums"])["tensors"])
elif mode == "extra-checksum":
    c = json.loads(m["larv_checksums"]); c["tensors"]["not.in.the.file"] = "0123456789abcdef"
    m["larv_checksums"] = json.dumps(c)
elif mode == "dtype":            # same bytes, another 4-byte dtype
    h[W]["dtype"] = "I32"
elif mode == "shape":            # same bytes, the shape reversed
    h[W]["shape"] = h[W]["shape"][::-1]
else: raise SystemExit("unknown mode " + mode)
t = json.dumps(h, sort_keys=True).encode(); t += b" " * (-len(t) % 8)
open(dst, "wb").write(struct.pack("<Q", len(t)) + t + d)
EOF

# a fresh merge and its conversion verify
$LARV convert m.safetensors m.h5 >/dev/null
for f in m.safetensors m.h5; do
  if $LARV verify $f >log 2>&1 && grep -q "merged by larv .*, method ta," log; then ok "verify $f passes"
  else bad "verify $f fails on a fresh merge"; cat log; fi
done

# expect CASE TEXT: both formats fail with 65, the message has TEXT, no provenance printed
expect() {
  local mode=$1 text=$2
  $PY edit.py "$mode" m.safetensors "$mode.safetensors" $W
  $LARV convert "$mode.safetensors" "$mode.h5" >/dev/null 2>&1 || true
  for f in "$mode.safetensors" "$mode.h5"; do
    [ -e "$f" ] || { bad "$mode: $f was not converted"; continue; }
    local rc=0
    $MPIEXEC -np 2 $LARV verify "$f" >log 2>&1 || rc=$?
    if [ $rc = 65 ] && grep -qF -- "$text" log && grep -qF -- "$f" log && ! grep -q "merged by larv" log; then
      ok "$mode ($f): exit 65, '$text'"
    else
      bad "$mode ($f): exit $rc, expected 65 with '$text' and no provenance"; cat log
    fi
  done
}
expect no-checksums "'larv_checksums' is missing"
expect garbage-checksums "'larv_checksums' is damaged"
expect flat-checksums "'larv_checksums' is damaged"
expect no-provenance "'larv_provenance' is missing"
expect garbage-provenance "'larv_provenance' does not match"
expect edited-provenance "'larv_provenance' does not match"
expect extra-checksum "tensor 'not.in.the.file', which the file lacks"
expect dtype "tensor '$W' (I32)"
expect shape "tensor '$W'"

# big metadata: inputs under a 3000-character path and 3 long patterns make a
# provenance of ~20 KB; safetensors output holds it (the header is sized for
# it) and verifies, as HDF5 does
long=$(printf 'd%.0s' $(seq 200))
deep=$long/$long/$long/$long/$long/$long/$long/$long/$long/$long/$long/$long/$long/$long/$long
mkdir -p "$deep"
for f in base task01 task02; do ln pool/$f.safetensors "$deep/$f.safetensors"; done
pat="*$(printf 'nomatch%.0s' $(seq 400))*"
for out in big.safetensors big.h5; do
  rc=0
  $MPIEXEC -np 2 $LARV merge --quiet --method ta --base "$deep/base.safetensors" --task "$deep/task01.safetensors" \
    --task "$deep/task02.safetensors" --exclude "$pat" --exclude "x$pat" --larv-proxy "*fc1*" --larv-proxy "$pat" \
    --out $out >log 2>&1 || rc=$?
  if [ $rc = 0 ] && $LARV verify $out >vlog 2>&1 && grep -qF "$deep/task02.safetensors" vlog; then
    ok "big metadata: $out written and verified"
  else bad "big metadata: $out: merge exit $rc"; cat log vlog 2>/dev/null || true; fi
done

finish
