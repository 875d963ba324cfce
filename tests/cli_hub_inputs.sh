#!/usr/bin/env bash
# Checkpoints laid out as the Hugging Face Hub serves them (issue 11, the input
# side), end to end with tests/hub/make_hub_pool.py's fixtures:
#  - model directories are checkpoints (model.safetensors, or a sharded base's
#    model.safetensors.index.json) for merge, inspect, convert, plan and job files;
#  - a full CLIPModel base (both towers, 0-d logit_scale, I64 position_ids) with
#    CLIPVisionModel tasks merges the tasks' common set; the base-only tensors
#    are left out and counted (summary, report), or copied (--keep-base-only);
#    --include 'vision_model.*' selects;
#  - F16 and BF16 tasks in an F32 pool; --out-dtype; non-float tensors copied;
#  - values and dtypes against tests/reference/merge_ref.py (all five methods at
#    2 ranks, LARV on; the selection cases at 1, 2 and 3 ranks);
#  - refusals with their messages, nothing written: a directory with only
#    pytorch_model.bin (66), a task tensor the base lacks, a tensor in only some
#    tasks (> 20 mismatches: 20 listed and a count), a non-float dtype clash (65).
# Outputs are single files here (model-directory outputs: other tests).
set -euo pipefail
: "${LARV:?} ${LARV_SRC:?} ${MPIEXEC:?}"
PY=/usr/bin/python3
REF="$PY $LARV_SRC/tests/reference/merge_ref.py"
GEN="$PY $LARV_SRC/tests/hub/make_hub_pool.py"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok   $*"; }
bad() { fail=$((fail+1)); echo "FAIL $*"; }
larv() { # NP ARGS...: larv at NP ranks (1: a single process)
  local np=$1; shift
  if [ "$np" = 1 ]; then timeout 300 $LARV "$@"; else timeout 300 $MPIEXEC -np "$np" $LARV "$@"; fi
}
# json FILE EXPR: a value of a JSON file (python expression over j)
json() { $PY -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

# the pools (seed 7 everywhere: the same base weights)
$GEN mix --tasks 3 --dtypes F32,F16,BF16 --position-ids          # full CLIP base, mixed dtypes
$GEN shard --tasks 3 --position-ids --position-ids-in-tasks --shard-base 20000
$GEN two --tasks 2 --two-tower                                   # tasks with both towers
$GEN slim --tasks 1 --base-like-tasks                            # a base of vision_model.* only
$GEN clash --tasks 2 --position-ids --position-ids-in-tasks --task-position-ids-dtype I32
MT="--task mix/sun397 --task mix/stanford-cars --task mix/resisc45"
ST="--task shard/sun397 --task shard/stanford-cars --task shard/resisc45"
ls shard/base/model-0000*-of-*.safetensors >/dev/null && [ ! -e shard/base/model.safetensors ] ||
  bad "fixture: the sharded base has no shards"
nb=$($PY -c "import json,struct; f=open('mix/base/model.safetensors','rb'); n=struct.unpack('<Q',f.read(8))[0]; print(len([k for k in json.loads(f.read(n)) if k!='__metadata__']))")
nt=$($PY -c "import json,struct; f=open('mix/sun397/model.safetensors','rb'); n=struct.unpack('<Q',f.read(8))[0]; print(len([k for k in json.loads(f.read(n)) if k!='__metadata__']))")
left=$((nb - nt))

# check NAME CMD...: the command exits 0
check() { local name=$1; shift; if "$@" >log 2>&1; then ok "$name"; else bad "$name"; cat log; fi; }

for np in 1 2 3; do
  # the full-CLIP base, vision tasks in F32/F16/BF16: the common set, the rest left out
  if larv $np merge --quiet --method ta --base mix/base $MT --out a$np.safetensors \
       --report a$np.json >a$np.log 2>&1; then
    lo=$(json a$np.json 'j["base_only_left_out"]'); nten=$(json a$np.json 'j["tensors"]')
    fl=$(json a$np.json '[i.get("file","") for i in j["inputs"]][0]')
    [ "$lo" = "$left" ] && [ "$nten" = "$nt" ] && [ "$fl" = mix/base/model.safetensors ] &&
      grep -q "selection: $left tensors only the base has ($left left out, 0 copied" a$np.log &&
      ok "np$np full-CLIP base: $nt merged, $lo left out (report, summary), base file named" ||
      { bad "np$np full-CLIP base: left out $lo/$left, tensors $nten/$nt, file '$fl'"; cat a$np.log; }
    check "np$np full-CLIP base: values (ta, LARV, F32/F16/BF16 tasks) = merge_ref" \
      $REF --method ta --base mix/base $MT --merged a$np.safetensors --report a$np.json
  else bad "np$np full-CLIP base: merge failed"; cat a$np.log; fi
  # --include selects (the base-only tensors outside it are not counted as left out)
  if larv $np merge --quiet --method iso-c --base mix/base $MT --include 'vision_model.*' \
       --out b$np.safetensors --report b$np.json >b$np.log 2>&1; then
    check "np$np --include 'vision_model.*' (iso-c) = merge_ref" \
      $REF --method iso-c --base mix/base $MT --include 'vision_model.*' --merged b$np.safetensors --report b$np.json
    ni=$(json b$np.json 'j["not_included"]'); lo=$(json b$np.json 'j["base_only_left_out"]')
    [ "$lo" = 1 ] && [ "$ni" -gt 0 ] && ok "np$np --include: $ni not included, $lo (vision position_ids) left out" ||
      bad "np$np --include: not_included $ni, left out $lo"
  else bad "np$np --include: merge failed"; cat b$np.log; fi
  # --keep-base-only copies them, into --out-dtype BF16
  if larv $np merge --quiet --method tsv --base mix/base $MT --keep-base-only --out-dtype BF16 \
       --out c$np.safetensors --report c$np.json >c$np.log 2>&1; then
    check "np$np --keep-base-only --out-dtype BF16 (tsv) = merge_ref (values, dtypes, I64 copied)" \
      $REF --method tsv --base mix/base $MT --keep-base-only --out-dtype BF16 --merged c$np.safetensors --report c$np.json
    [ "$(json c$np.json 'j["base_only_tensors"]')" = "$left" ] && [ "$(json c$np.json 'j["base_only_left_out"]')" = 0 ] &&
      ok "np$np --keep-base-only: $left copied, none left out" || bad "np$np --keep-base-only counts"
  else bad "np$np --keep-base-only: merge failed"; cat c$np.log; fi
  # a sharded base directory; tasks with (I64) position_ids: copied from the base
  if larv $np merge --quiet --method ties --base shard/base $ST --out d$np.safetensors \
       --report d$np.json >d$np.log 2>&1; then
    check "np$np sharded base dir (ties) = merge_ref" \
      $REF --method ties --base shard/base $ST --merged d$np.safetensors --report d$np.json
    [ "$(json d$np.json '[i.get("file","") for i in j["inputs"]][0]')" = shard/base/model.safetensors.index.json ] &&
      ok "np$np sharded base: the report names the index read" || bad "np$np sharded base: report file"
  else bad "np$np sharded base: merge failed"; cat d$np.log; fi
done

# all five methods at 2 ranks, LARV on, mixed dtypes, --out-dtype F16 (iso-cts)
for m in ta ties tsv iso-c iso-cts; do
  od=""; [ $m = iso-cts ] && od="--out-dtype F16"
  if larv 2 merge --quiet --method $m --base mix/base $MT $od --out m-$m.safetensors \
       --report m-$m.json >m.log 2>&1; then
    check "np2 $m ${od:-(base dtype)} = merge_ref" \
      $REF --method $m --base mix/base $MT $od --merged m-$m.safetensors --report m-$m.json
  else bad "np2 $m: merge failed"; cat m.log; fi
done

# a job file with the new keys
cat >job.yaml <<'EOJ'
method: ta
base: mix/base
tasks: [mix/sun397, mix/stanford-cars, mix/resisc45]
include: ['vision_model.encoder.*']
keep_base_only: true
out_dtype: F16
out: job.safetensors
EOJ
if larv 1 merge --quiet --job job.yaml --report job.json >job.log 2>&1; then
  check "job file: include, keep_base_only, out_dtype = merge_ref" \
    $REF --method ta --base mix/base $MT --include 'vision_model.encoder.*' --keep-base-only \
      --out-dtype F16 --merged job.safetensors --report job.json
else bad "job file: merge failed"; cat job.log; fi

# inspect, convert and plan take directories and say which file they read
larv 1 inspect shard/base >insp.log 2>&1 && grep -q "^file: *shard/base/model.safetensors.index.json (the model directory shard/base)" insp.log &&
  grep -q "sharded-safetensors" insp.log && ok "inspect DIR names the index it read" || { bad "inspect DIR"; cat insp.log; }
larv 1 inspect mix/sun397 --json >insp.json 2>&1 && [ "$(json insp.json 'j["directory"] + " " + j["file"]')" = "mix/sun397 mix/sun397/model.safetensors" ] &&
  ok "inspect --json DIR: directory and file" || { bad "inspect --json DIR"; cat insp.json; }
larv 2 convert shard/base conv.safetensors >conv.log 2>&1 && cmp -s <(larv 1 inspect conv.safetensors --json | json /dev/stdin '[(t["name"],t["dtype"],t["shape"]) for t in j["tensors"]]') \
  <(larv 1 inspect shard/base --json | json /dev/stdin '[(t["name"],t["dtype"],t["shape"]) for t in j["tensors"]]') &&
  ok "convert DIR (sharded) -> file" || { bad "convert DIR"; cat conv.log; }
larv 1 plan --base mix/base --include 'vision_model.*' --tasks 3 --method iso-c --ranks 1,2 >plan.log 2>&1 &&
  grep -q "mix/base x 3 tasks, method iso-c, LARV tiered3: $((nt + 1)) tensors" plan.log &&
  ok "plan --base DIR --include" || { bad "plan --base DIR --include"; cat plan.log; }

# refusals: exit code, every text in the output, nothing written
refuse() { # NAME CODE "T1|T2" NP merge-args...
  local name=$1 code=$2 texts=$3 np=$4; shift 4
  local rc=0 why=""
  larv $np merge --quiet "$@" --out r.safetensors >log 2>&1 || rc=$?
  [ "$rc" = "$code" ] || why="exit $rc, expected $code"
  IFS='|' read -ra want <<<"$texts"
  for t in "${want[@]}"; do grep -qF -- "$t" log || why="$why; message lacks '$t'"; done
  [ ! -e r.safetensors ] && [ -z "$(compgen -G 'r.safetensors.larv-*' || true)" ] || why="$why; something was written"
  if [ -z "$why" ]; then ok "$name: $(grep -m1 'larv merge' log | cut -c1-150)"; else bad "$name: ${why#; }"; cat log; fi
}
mkdir -p pt; echo '{}' >pt/config.json; : >pt/pytorch_model.bin
refuse "dir with only pytorch_model.bin" 66 "pt: a directory without model.safetensors|found pytorch_model.bin|save_pretrained" 1 \
  --method ta --base mix/base --task pt --task mix/resisc45
mkdir -p tf; : >tf/tf_model.h5; : >tf/flax_model.msgpack
refuse "dir with TensorFlow/Flax weights" 66 "found |tf_model.h5|flax_model.msgpack|TensorFlow weights, not larv's HDF5" 1 \
  --method ta --base mix/base --task tf --task mix/resisc45
larv 1 inspect pt >log 2>&1 && bad "inspect of a pytorch_model.bin dir succeeded" ||
  { [ $? = 66 ] && grep -q "found pytorch_model.bin" log && ok "inspect refuses it too (66)" || { bad "inspect pt dir"; cat log; }; }
refuse "task tensor not in the base" 65 "two/sun397/model.safetensors: tensor 'text_model.|is not in the base (slim/base/model.safetensors)" 2 \
  --method ta --base slim/base --task slim/sun397 --task two/sun397
refuse "tensor in only some tasks: 20 listed + a count" 65 "tensor mismatches in the pool|the first 20|is in only 1 of the 2 tasks: mix/sun397/model.safetensors lacks it|... and " 2 \
  --method ta --base mix/base --task mix/sun397 --task two/stanford-cars
n20=$(grep -c "^  tensor '.*' is in only 1 of the 2 tasks" log || true)
[ "$n20" = 20 ] && ok "exactly 20 mismatches listed" || bad "$n20 mismatches listed, expected 20"
refuse "non-float dtype clash" 65 "clash/sun397/model.safetensors: tensor 'vision_model.embeddings.position_ids' is I32 but the base (clash/base/model.safetensors) has I64" 1 \
  --method ta --base clash/base --task clash/sun397 --task clash/stanford-cars
refuse "--include matching nothing" 65 "--include matches none" 1 \
  --method ta --base mix/base $MT --include 'nothing.*'

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
