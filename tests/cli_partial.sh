#!/usr/bin/env bash
# Partial fine-tuning (spec "Untouched updates"): a pool whose early blocks were
# frozen (their task vectors exactly zero). LARV leaves zero (matrix, task) pairs
# out of the block means and untouched blocks out of the standardisation and the
# quantiles (scale 1, no proxies in the report). Every method with LARV tiered3
# (and the other rules) at 1 and 2 ranks against tests/reference/merge_ref.py,
# which checks the merged tensors and the report's LARV table.
# Not Iso-CTS: its merge of a block where one task is zero is not unique (that
# task's "top-d" singular vectors are any orthonormal vectors, and they enter the
# whitening), so larv and numpy may both be right and differ; a block frozen for
# every task merges to zero and is checked by the others.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
$PY -c 'import numpy' || { echo "python3-numpy is needed (bash .ci/deps.sh test installs it)"; exit 1; }
REF="$PY $LARV_SRC/tests/reference/merge_ref.py"
$LARV synth --arch tiny --tasks 3 --seed 11 --out "$work/pool" --quiet
# freeze (the tiny arch has 4 blocks): block 0 of every task and block 1 of task 1
# get the base's bytes
$PY - "$work/pool" <<'PYEOF'
import json, re, struct, sys
d = sys.argv[1]
def header(p):
    with open(p, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return 8 + n, json.loads(f.read(n))
bo, bh = header(f"{d}/base.safetensors")
base = open(f"{d}/base.safetensors", "rb").read()
for t in (1, 2, 3):
    p = f"{d}/task0{t}.safetensors"
    to, th = header(p)
    buf = bytearray(open(p, "rb").read())
    for k, v in th.items():
        m = re.search(r"\.layers\.(\d+)\.", k)
        if k == "__metadata__" or not m:
            continue
        blk = int(m.group(1))
        if blk == 0 or (blk == 1 and t == 1):
            b0, b1 = bh[k]["data_offsets"]
            t0, t1 = v["data_offsets"]
            buf[to + t0:to + t1] = base[bo + b0:bo + b1]
    open(p, "wb").write(bytes(buf))
PYEOF
pool=(--base "$work/pool/base.safetensors" --task "$work/pool/task01.safetensors"
      --task "$work/pool/task02.safetensors" --task "$work/pool/task03.safetensors")
run() { # name, ranks, larv merge args...; then the same args go to the reference
  local name=$1 np=$2; shift 2
  local out="$work/$name-np$np.safetensors" rep="$work/$name-np$np.json"
  if $MPIEXEC -np "$np" $LARV merge "${pool[@]}" --out "$out" --report "$rep" --quiet "$@" >"$work/log" 2>&1 \
     && $REF "${pool[@]}" --merged "$out" --report "$rep" "$@"; then
    ok
  else
    bad "$name at $np ranks"; cat "$work/log"
  fi
}
for np in 1 2; do
  for m in ta ties tsv iso-c; do
    run "$m" $np --method $m --larv tiered3
  done
  run tsv-all $np --method tsv --larv tiered3 --larv-proxy '*'
  run iso-c-tiered2 $np --method iso-c --larv tiered2
  run ta-depth $np --method ta --larv depth
  run ta-continuous $np --method ta --larv continuous
done
# the report: block 0 untouched (no proxies, scale 1), block 1 has proxies from
# its two touched tasks, and the three tiers go to blocks 1..3
if $PY - "$work/tsv-np1.json" <<'PYEOF'
import json, sys
ls = {x["name"]: x for x in json.load(open(sys.argv[1]))["layers"]}
x = ls["0"]
assert x["effective_rank_contrast"] is None and x["score"] is None and x["scale"] == 1.0, x
x = ls["1"]
assert x["effective_rank_contrast"] is not None and x["score"] is not None, x
assert sorted(ls[str(l)]["scale"] for l in (1, 2, 3)) == [0.5, 1.0, 1.2], ls
PYEOF
then ok; else bad "report of the untouched blocks"; fi
# the text table marks untouched blocks with '-' and scale 1
if $MPIEXEC -np 1 $LARV merge "${pool[@]}" --method ta --out "$work/t.safetensors" --quiet >"$work/table" 2>&1 \
   && grep -Eq '^0 +[0-9]+ +- +- +- +- +1$' "$work/table"; then ok; else bad "text table"; cat "$work/table"; fi
finish
