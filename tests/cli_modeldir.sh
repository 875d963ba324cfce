#!/usr/bin/env bash
# larv merge --out DIR/: a model directory that transformers loads (issue 11).
# On a pool laid out as the Hub serves it (tests/hub/make_hub_pool.py), at 1, 2
# and 3 ranks: the directory's files (model.safetensors, config.json and the
# tokenizer/preprocessor files copied from the first task's directory, never
# weights nor a file over 10 MB; README.md model card; larv-report.json), the
# rules transformers applies when loading (tests/hub/hf_rules.py: "format"
# metadata, index form, shards, dtypes, config), shards forced by a small
# --out-shard-size, tensor bytes equal to the same merge written as one file,
# the model card's recipe against the report, `larv verify` on the directory,
# the index and each shard (and its failures on a tampered shard and index),
# what happens to an existing directory, the refusals (an input directory, a
# file in the way, a bad size, a held lock), a failing run (nothing left), a
# killed run (nothing at DIR) and its --resume (the same bytes), and "format"
# in larv convert's outputs.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RULES="$LARV_SRC/tests/hub/hf_rules.py"

$PY "$LARV_SRC/tests/hub/make_hub_pool.py" "$work/pool" --tasks 3 --base-like-tasks --seed 3 >/dev/null
P=$work/pool
# the first task's directory as the Hub's cache has it: tokenizer and
# preprocessor files (one a symlink to its blob), weights in other formats,
# a file over 10 MB, a subdirectory
src=$P/sun397
echo '{"version": "1.0"}' >"$src/tokenizer.json"
echo '{"crop_size": 8}' >"$src/preprocessor_config.json"
printf 'a\nb\n' >"$src/vocab.txt"
mkdir -p "$work/blobs"; echo '{"bos_token": "<s>"}' >"$work/blobs/abc123"
ln -s "$work/blobs/abc123" "$src/special_tokens_map.json"
head -c 11000000 /dev/zero >"$src/big.json"
echo fake >"$src/pytorch_model.bin"; echo fake >"$src/flax_model.msgpack"
echo '{}' >"$src/pytorch_model.bin.index.json"
mkdir -p "$src/sub"; echo x >"$src/sub/x.json"
pool=(--base "$P/base/model.safetensors")
for t in sun397 stanford-cars resisc45; do pool+=(--task "$P/$t/model.safetensors"); done
M=(--method iso-c --larv tiered3 --quiet)

# tensor bytes of two checkpoints (a file, or a directory's weights) equal
same_tensors() {
  $PY - "$1" "$2" <<'EOF'
import json, os, struct, sys
def load(p):
    if os.path.isdir(p):
        f = os.path.join(p, "model.safetensors")
        if not os.path.exists(f):
            ix = json.load(open(os.path.join(p, "model.safetensors.index.json")))
            out = {}
            for s in sorted(set(ix["weight_map"].values())):
                out.update(load(os.path.join(p, s)))
            return out
        p = f
    raw = open(p, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8]); h = json.loads(raw[8:8 + n]); h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
a, b = load(sys.argv[1]), load(sys.argv[2])
bad = [k for k in a if k not in b or a[k] != b[k]] + [k for k in b if k not in a]
if bad: print("differ:", bad[:5])
sys.exit(1 if bad else 0)
EOF
}

# the model card against the report (method, lambda, rule, every layer's scale,
# every input's digest, the command line, front matter)
card_ok() {
  $PY - "$1" <<'EOF'
import json, sys, os
d = sys.argv[1]
card = open(os.path.join(d, "README.md")).read()
rep = json.load(open(os.path.join(d, "larv-report.json")))
errs = []
fm = card.split("---\n")[1]
for want in ["library_name: transformers", "- merge", "- larv", "base_model:", "base_model_relation: merge"]:
    if want not in fm: errs.append("front matter lacks " + want)
for i in rep["inputs"]:
    hf = os.path.dirname(i["path"]) if os.path.basename(i["path"]) == "model.safetensors" else i["path"]
    if '- "%s"' % hf not in fm: errs.append("base_model lacks " + hf)
    if "`%s`" % i["digest"] not in card: errs.append("no digest of " + i["path"])
if "- method: `%s`" % rep["method"] not in card: errs.append("method")
if "- lambda: %g" % rep["lambda"] not in card: errs.append("lambda")
if "- LARV rule: `%s`" % rep["larv"]["rule"] not in card: errs.append("rule")
rows = [l for l in card.splitlines() if l.startswith("| ") and not l.startswith("| group") and not l.startswith("| stack") and "|---" not in l and not l.startswith("| role") and not l.startswith("| base") and not l.startswith("| task")]
if len(rows) != len(rep["layers"]): errs.append("%d table rows for %d layers" % (len(rows), len(rep["layers"])))
for row, l in zip(rows, rep["layers"]):
    cells = [c.strip() for c in row.strip("|").split("|")]
    if "stack" in l:  # a stack column first (LARV per stack)
        if cells[0] != l["stack"]: errs.append("row %s vs stack %s" % (cells, l["stack"]))
        cells = cells[1:]
    if cells[0] != l["name"] or abs(float(cells[-1]) - l["scale"]) > 1e-5 * max(1, abs(l["scale"])):
        errs.append("row %s vs layer %s scale %s" % (cells, l["name"], l["scale"]))
if "larv merge" not in card or "--out" not in card: errs.append("command line")
if 'from transformers import CLIPVisionModel' not in card: errs.append("loading snippet")
if rep["summary"]["output"].rstrip("/") != d.rstrip("/"): errs.append("report output %s" % rep["summary"]["output"])
for e in errs: print("card:", e)
sys.exit(1 if errs else 0)
EOF
}

# ---- the reference: the same merge as one file
$LARV merge "${M[@]}" "${pool[@]}" --out "$work/ref.safetensors" >/dev/null
check_that "reference merge" test -s "$work/ref.safetensors"

for np in 1 2 3; do
  d=$work/d$np
  log=$work/d$np.log
  rc=0; timeout 120 $MPIEXEC -np $np $LARV merge "${M[@]}" "${pool[@]}" --out "$d/" >"$log" 2>&1 || rc=$?
  check_that "np$np: exit 0 (got $rc)" test $rc = 0
  check_that "np$np: directory" test -d "$d"
  for f in model.safetensors config.json README.md larv-report.json tokenizer.json \
           preprocessor_config.json vocab.txt special_tokens_map.json; do
    check_that "np$np: $f present" test -f "$d/$f"
  done
  check_that "np$np: symlinked file copied as a file" test ! -L "$d/special_tokens_map.json"
  check_that "np$np: copied bytes" cmp -s "$d/tokenizer.json" "$src/tokenizer.json"
  check_that "np$np: config.json copied" cmp -s "$d/config.json" "$src/config.json"
  for f in big.json pytorch_model.bin flax_model.msgpack pytorch_model.bin.index.json sub \
           model.safetensors.index.json; do
    check_that "np$np: $f not copied" test ! -e "$d/$f"
  done
  check_that "np$np: log names what was skipped" grep -q "big.json (over 10 MB)" "$log"
  check_that "np$np: no staging directory or lock left" test ! -e "$d.larv-tmp" -a ! -e "$d.larv-lock"
  check_that "np$np: no temporaries inside" bash -c "! ls '$d' | grep -q larv-tmp"
  check_that "np$np: transformers' loading rules" $PY "$RULES" "$d" --dtype F32 --quiet
  check_that "np$np: format pt in the header" grep -q '"format":"pt"' <(head -c 200 "$d/model.safetensors")
  check_that "np$np: tensors equal the single-file merge" same_tensors "$d" "$work/ref.safetensors"
  check_that "np$np: model card" card_ok "$d"
  check_that "np$np: larv verify DIR" $LARV verify "$d" >/dev/null

  # sharded: a small --out-shard-size forces 3 or more shards
  s=$work/s$np
  rc=0; timeout 120 $MPIEXEC -np $np $LARV merge "${M[@]}" "${pool[@]}" --out "$s" \
      --out-shard-size 16K >"$work/s$np.log" 2>&1 || rc=$?
  check_that "np$np sharded: exit 0 (got $rc)" test $rc = 0
  check_that "np$np sharded: no model.safetensors" test ! -e "$s/model.safetensors"
  $PY - "$s" 16000 <<'EOF' && ok || bad "np$np sharded: index form, names, sizes"
import json, os, re, struct, sys
d, cap = sys.argv[1], int(sys.argv[2])
ix = json.load(open(os.path.join(d, "model.safetensors.index.json")))
assert set(ix) == {"metadata", "weight_map"}, ix.keys()
assert isinstance(ix["metadata"]["total_size"], int)
shards = sorted(set(ix["weight_map"].values()))
n = len(shards)
assert n >= 3, n
assert shards == ["model-%05d-of-%05d.safetensors" % (k + 1, n) for k in range(n)], shards
assert sorted(f for f in os.listdir(d) if f.endswith(".safetensors")) == shards
total = 0
for s in shards:
    raw = open(os.path.join(d, s), "rb").read()
    (h,) = struct.unpack("<Q", raw[:8]); hdr = json.loads(raw[8:8 + h])
    assert hdr.pop("__metadata__") == {"format": "pt"}, s
    b = sum(v["data_offsets"][1] - v["data_offsets"][0] for v in hdr.values())
    big = max(v["data_offsets"][1] - v["data_offsets"][0] for v in hdr.values())
    assert b <= cap or len(hdr) == 1, (s, b)
    total += b
assert total == ix["metadata"]["total_size"], (total, ix["metadata"]["total_size"])
EOF
  check_that "np$np sharded: transformers' loading rules" $PY "$RULES" "$s" --dtype F32 --quiet
  check_that "np$np sharded: tensors equal the single-file merge" same_tensors "$s" "$work/ref.safetensors"
  check_that "np$np sharded: larv verify DIR" $LARV verify "$s" >/dev/null
done
for sh in "$work"/s2/model-*-of-*.safetensors; do # (each larv start costs a second)
  check_that "sharded: larv verify $(basename "$sh")" $LARV verify "$sh" >/dev/null
done

# ---- verify and the checker fail on tampering (a copy of the 2-rank shards)
t=$work/tamper; cp -r "$work/s2" "$t"
sh=$(ls "$t"/model-00002-of-*.safetensors)
$PY - "$sh" <<'EOF'
import struct, sys
p = sys.argv[1]; raw = bytearray(open(p, "rb").read())
(n,) = struct.unpack("<Q", raw[:8]); raw[8 + n + 5] ^= 0x40
open(p, "wb").write(raw)
EOF
rc=0; $LARV verify "$t" >"$work/v.log" 2>&1 || rc=$?
check_that "tampered shard: verify DIR exits 65 (got $rc)" test $rc = 65
check_that "tampered shard: names the tensor" grep -q "CORRUPT" "$work/v.log"
rc=0; $LARV verify "$sh" >/dev/null 2>&1 || rc=$?
check_that "tampered shard: verify SHARD exits 65 (got $rc)" test $rc = 65
other=$(ls "$t"/model-00001-of-*.safetensors)
check_that "tampered shard: another shard still verifies" $LARV verify "$other" >/dev/null
cp -r "$work/s2" "$work/tix"
$PY - "$work/tix/model.safetensors.index.json" <<'EOF'
import json, sys
p = sys.argv[1]; ix = json.load(open(p)); k = sorted(ix["weight_map"])[0]; del ix["weight_map"][k]
json.dump(ix, open(p, "w"), indent=2)
EOF
rc=0; $LARV verify "$work/tix" >"$work/v.log" 2>&1 || rc=$?
check_that "index missing an entry: verify exits 65 (got $rc)" test $rc = 65
check_that "index missing an entry: message" grep -q "does not list" "$work/v.log"
check_that "index missing an entry: the checker refuses it" bash -c "! $PY '$RULES' '$work/tix' --quiet >/dev/null"
cp -r "$work/s2" "$work/tts"
sed -i 's/"total_size": \([0-9]*\)/"total_size": 1\1/' "$work/tts/model.safetensors.index.json"
rc=0; $LARV verify "$work/tts" >"$work/v.log" 2>&1 || rc=$?
check_that "wrong total_size: verify exits 65 (got $rc)" test $rc = 65
check_that "wrong total_size: the checker refuses it" bash -c "! $PY '$RULES' '$work/tts' --quiet >/dev/null"
# a model.safetensors whose metadata lacks "format": what transformers refuses
cp -r "$work/d1" "$work/nofmt"
$PY - "$work/nofmt/model.safetensors" <<'EOF'
import json, struct, sys
p = sys.argv[1]; raw = open(p, "rb").read()
(n,) = struct.unpack("<Q", raw[:8]); h = json.loads(raw[8:8 + n]); del h["__metadata__"]["format"]
t = json.dumps(h, separators=(",", ":")).encode(); t += b" " * (n - len(t))
open(p, "wb").write(raw[:8] + t + raw[8 + n:])
EOF
check_that "no format: the checker refuses it" bash -c "! $PY '$RULES' '$work/nofmt' --quiet >/dev/null"
rc=0; $LARV verify "$work/nofmt" >/dev/null 2>&1 || rc=$?
check_that "no format: verify DIR exits 65 (got $rc)" test $rc = 65

# ---- an existing directory: its other files stay, stale weights of the other layout go
e=$work/exist; mkdir "$e"; echo keep >"$e/keep.txt"
cp "$work/s2"/model-0000*.safetensors "$work/s2/model.safetensors.index.json" "$e/"
rc=0; $LARV merge "${M[@]}" "${pool[@]}" --out "$e" >"$work/e.log" 2>&1 || rc=$?
check_that "existing dir: exit 0 (got $rc)" test $rc = 0
check_that "existing dir: other file kept" grep -qx keep "$e/keep.txt"
check_that "existing dir: stale shards and index removed" bash -c "! ls '$e' | grep -q -e 'model-0' -e index.json"
check_that "existing dir: loading rules" $PY "$RULES" "$e" --quiet
check_that "existing dir: tensors" same_tensors "$e" "$work/ref.safetensors"
check_that "existing dir: no staging left" test ! -e "$e.larv-tmp"

# ---- refusals: nothing written, nothing changed
sum_dir() { (cd "$1" && find . -type f -exec md5sum {} + | sort); }
before=$(sum_dir "$P")
rc=0; $LARV merge "${M[@]}" "${pool[@]}" --out "$P/sun397/" >"$work/r.log" 2>&1 || rc=$?
check_that "output = an input's directory: exit 64 (got $rc)" test $rc = 64
check_that "output = an input's directory: message" grep -q "holds the input" "$work/r.log"
check_that "output = an input's directory: pool unchanged" test "$before" = "$(sum_dir "$P")"
check_that "output = an input's directory: nothing staged" test ! -e "$P/sun397.larv-tmp"
echo x >"$work/afile"
rc=0; $LARV merge "${M[@]}" "${pool[@]}" --out "$work/afile" >"$work/r.log" 2>&1 || rc=$?
check_that "a file in the way: exit 74 (got $rc)" test $rc = 74
check_that "a file in the way: kept" grep -qx x "$work/afile"
rc=0; $LARV merge "${M[@]}" "${pool[@]}" --out "$work/bad/" --out-shard-size 5X >"$work/r.log" 2>&1 || rc=$?
check_that "bad --out-shard-size: exit 64 (got $rc)" test $rc = 64
check_that "bad --out-shard-size: nothing made" test ! -e "$work/bad" -a ! -e "$work/bad.larv-tmp"
(flock -x 9; sleep 30) 9>"$work/held.larv-lock" & holder=$!
for _ in $(seq 100); do flock -n -x "$work/held.larv-lock" true 2>/dev/null || break; sleep 0.1; done
rc=0; $LARV merge "${M[@]}" "${pool[@]}" --out "$work/held/" >"$work/r.log" 2>&1 || rc=$?
kill $holder 2>/dev/null || true; wait $holder 2>/dev/null || true
check_that "held lock: exit 74 (got $rc)" test $rc = 74
check_that "held lock: nothing made" test ! -e "$work/held" -a ! -e "$work/held.larv-tmp"

# ---- the first task not in a model directory: nothing copied, said so
cp "$P/sun397/model.safetensors" "$work/t1.safetensors"
rc=0; $LARV merge "${M[@]}" --base "$P/base/model.safetensors" --task "$work/t1.safetensors" \
    --task "$P/stanford-cars/model.safetensors" --out "$work/nocopy/" >"$work/n.log" 2>&1 || rc=$?
check_that "no source dir: exit 0 (got $rc)" test $rc = 0
check_that "no source dir: said so" grep -q "no config.json or tokenizer files copied" "$work/n.log"
check_that "no source dir: nothing copied" test "$(ls "$work/nocopy" | sort | tr '\n' ' ')" = "README.md larv-report.json model.safetensors "
check_that "no source dir: the card says so" grep -q "not given as a model directory" "$work/nocopy/README.md"

# ---- config.json's torch_dtype follows the weights (an F16 pool whose first task's
# config says float32); a job file's `out: DIR/`
$PY "$LARV_SRC/tests/hub/make_hub_pool.py" "$work/p16" --tasks 2 --base-like-tasks \
    --base-dtype F16 --dtypes F16,F16 --seed 4 >/dev/null
sed -i 's/"torch_dtype": *"float16"/"torch_dtype": "float32"/' "$work/p16/sun397/config.json"
printf '%s\n' 'method: ta' 'base: base/model.safetensors' \
    'task: [sun397/model.safetensors, stanford-cars/model.safetensors]' 'out: ../o16/' \
    >"$work/p16/job.yaml"
rc=0; $LARV merge --job "$work/p16/job.yaml" --quiet >"$work/o16.log" 2>&1 || rc=$?
check_that "F16 job: exit 0 (got $rc)" test $rc = 0
check_that "F16 job: torch_dtype float16" grep -q '"torch_dtype": "float16"' "$work/o16/config.json"
check_that "F16 job: said so" grep -q "torch_dtype set to float16" "$work/o16.log"
check_that "F16 job: loading rules, F16" $PY "$RULES" "$work/o16" --dtype F16 --quiet

# ---- a failing run leaves nothing (no DIR, no staging, no lock)
rc=0; LARV_TEST_FAIL_RANK=1 timeout 120 $MPIEXEC -np 2 $LARV merge "${M[@]}" "${pool[@]}" \
    --out "$work/failed/" >"$work/f.log" 2>&1 || rc=$?
check_that "failing rank: non-zero exit" test $rc != 0
check_that "failing rank: nothing left" test ! -e "$work/failed" -a ! -e "$work/failed.larv-tmp" -a ! -e "$work/failed.larv-lock"

# ---- killed midway: nothing at DIR; --resume completes it with the same bytes
k=$work/killed
LARV_TEST_SLOW_WRITE_MS=150 timeout 120 $MPIEXEC -np 2 $LARV merge "${M[@]}" "${pool[@]}" \
    --out "$k/" >"$work/k.log" 2>&1 & mp=$!
j=$k.larv-tmp/model.safetensors.larv-tmp.journal.1
for _ in $(seq 600); do [ "$(cat "$j" 2>/dev/null | wc -l)" -ge 4 ] && break; sleep 0.05; done
victim=""
for _ in $(seq 40); do
  for p in $(pgrep -x larv || true); do
    if grep -qa -- "$k/" /proc/$p/cmdline 2>/dev/null &&
       tr '\0' '\n' </proc/$p/environ 2>/dev/null | grep -qE '^(OMPI_COMM_WORLD_RANK|PMI_RANK|PMIX_RANK)=1$'; then
      victim=$p
    fi
  done
  [ -n "$victim" ] && break; sleep 0.1
done
if [ -n "$victim" ]; then
  kill -KILL "$victim"; rc=0; wait $mp || rc=$?
  check_that "killed: mpirun failed" test $rc != 0 -a $rc != 124
  check_that "killed: nothing at DIR" test ! -e "$k"
  check_that "killed: staging with temporaries and journals" test -e "$k.larv-tmp/model.safetensors.larv-tmp" -a -e "$k.larv-tmp/model.safetensors.larv-tmp.journal.0"
  rc=0; timeout 120 $MPIEXEC -np 2 $LARV merge "${M[@]}" "${pool[@]}" --out "$k/" --resume \
      >"$work/k2.log" 2>&1 || rc=$?
  check_that "resumed: exit 0 (got $rc)" test $rc = 0
  check_that "resumed: skipped journalled tensors" grep -q "resume: skipped [1-9]" "$work/k2.log"
  check_that "resumed: the same bytes as an uninterrupted run" cmp -s "$k/model.safetensors" "$work/d2/model.safetensors"
  check_that "resumed: loading rules" $PY "$RULES" "$k" --quiet
  check_that "resumed: nothing left beside" test ! -e "$k.larv-tmp" -a ! -e "$k.larv-lock"
  check_that "resumed: the card has the command with --resume" grep -q -- "--resume" "$k/README.md"
else
  wait $mp || true
  bad "no rank 1 to kill"
fi

# ---- every safetensors output says "format": "pt": convert too (file and shards)
$LARV convert "$work/ref.safetensors" "$work/ref.h5" >/dev/null
$LARV convert "$work/ref.h5" "$work/conv.safetensors" >/dev/null
check_that "convert: format pt" $PY "$RULES" "$work/conv.safetensors" --quiet
check_that "convert: format pt (grep)" grep -q '"format":"pt"' <(head -c 300 "$work/conv.safetensors")
$LARV convert "$work/ref.h5" "$work/conv.safetensors.index.json" >/dev/null
for sh in "$work"/conv-*-of-*.safetensors; do
  check_that "convert: shard $(basename "$sh") format pt" grep -q '"format":"pt"' <(head -c 100 "$sh")
done

finish
