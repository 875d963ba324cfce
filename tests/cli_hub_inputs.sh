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
#  - values and dtypes against tests/reference/merge_ref.py at 1, 2 and 3 ranks
#    (the five methods spread over them, LARV on);
#  - refusals with their messages, nothing written: a directory with only
#    pytorch_model.bin (66), a task tensor the base lacks, a tensor in only some
#    tasks (> 20 mismatches: 20 listed and a count), a non-float dtype clash (65).
# Outputs are single files here (model-directory outputs: other tests).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REF="$PY $LARV_SRC/tests/reference/merge_ref.py"
GEN="$PY $LARV_SRC/tests/hub/make_hub_pool.py"
cd "$work"
larv() { # NP ARGS...: larv at NP ranks (1: a single process)
  local np=$1; shift
  if [ "$np" = 1 ]; then timeout 300 $LARV "$@"; else timeout 300 $MPIEXEC -np "$np" $LARV "$@"; fi
}
# json FILE EXPR: a value of a JSON file (python expression over j)
json() { $PY -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

# the pools (seed 7 everywhere: the same base weights)
$GEN mix --tasks 3 --dtypes F32,F16,BF16 --position-ids --position-ids-in-tasks  # full CLIP base
$GEN shard --tasks 3 --dtypes BF16,F32,F16 --position-ids --shard-base 20000     # sharded base
$GEN two --tasks 2 --two-tower                                   # tasks with both towers
$GEN slim --tasks 1 --base-like-tasks                            # a base of vision_model.* only
$GEN clash --tasks 2 --position-ids --position-ids-in-tasks --task-position-ids-dtype I32
MT="--task mix/sun397 --task mix/stanford-cars --task mix/resisc45"
ST="--task shard/sun397 --task shard/stanford-cars --task shard/resisc45"
ls shard/base/model-0000*-of-*.safetensors >/dev/null && [ ! -e shard/base/model.safetensors ] ||
  bad "fixture: the sharded base has no shards"
ntens() { $PY -c "import json,struct,sys; f=open(sys.argv[1],'rb'); n=struct.unpack('<Q',f.read(8))[0]; print(len([k for k in json.loads(f.read(n)) if k!='__metadata__']))" "$1"; }
nb=$(ntens mix/base/model.safetensors); nt=$(ntens mix/sun397/model.safetensors)
left=$((nb - nt))

# check NAME CMD...: the command exits 0
check() { local name=$1; shift; if "$@" >log 2>&1; then ok "$name"; else bad "$name"; cat log; fi; }

# Per rank count two merges, the five methods spread over them (LARV on):
#  A: the full-CLIP base dir, vision tasks in F32/F16/BF16 with their (I64)
#     position_ids: the common set merged, the non-float buffers copied, the
#     base-only tensors left out and counted;
#  B: the sharded base dir, --include 'vision_model.*' --keep-base-only
#     --out-dtype BF16: the vision tower, its base-only position_ids copied.
methods_a=(ta ties iso-cts); methods_b=(tsv iso-c ta)
for np in 1 2 3; do
  ma=${methods_a[$((np - 1))]}; mb=${methods_b[$((np - 1))]}
  if larv $np merge --method $ma --base mix/base $MT --out a$np.safetensors \
       --report a$np.json >a$np.log 2>&1; then
    lo=$(json a$np.json 'j["base_only_left_out"]'); nten=$(json a$np.json 'j["tensors"]')
    fl=$(json a$np.json '[i.get("file","") for i in j["inputs"]][0]')
    [ "$lo" = "$left" ] && [ "$nten" = "$nt" ] && [ "$fl" = mix/base/model.safetensors ] &&
      grep -q "selection: $left tensors only the base has ($left left out, 0 copied" a$np.log &&
      grep -q "base mix/base: reading mix/base/model.safetensors" a$np.log &&
      ok "np$np full-CLIP base: $nt merged, $lo left out (report, summary), the file read named" ||
      { bad "np$np full-CLIP base: left out $lo/$left, tensors $nten/$nt, file '$fl'"; cat a$np.log; }
    check "np$np full-CLIP base, F32/F16/BF16 tasks ($ma, LARV) = merge_ref (values, dtypes, I64 copied)" \
      $REF --method $ma --base mix/base $MT --merged a$np.safetensors --report a$np.json
  else bad "np$np full-CLIP base: merge failed"; cat a$np.log; fi
  if larv $np merge --quiet --method $mb --base shard/base $ST --include 'vision_model.*' \
       --keep-base-only --out-dtype BF16 --out b$np.safetensors --report b$np.json >b$np.log 2>&1; then
    check "np$np sharded base dir, --include --keep-base-only --out-dtype BF16 ($mb) = merge_ref" \
      $REF --method $mb --base shard/base $ST --include 'vision_model.*' --keep-base-only \
        --out-dtype BF16 --merged b$np.safetensors --report b$np.json
    ni=$(json b$np.json 'j["not_included"]'); kb=$(json b$np.json 'j["base_only_tensors"]')
    lo=$(json b$np.json 'j["base_only_left_out"]')
    fl=$(json b$np.json '[i.get("file","") for i in j["inputs"]][0]')
    [ "$kb" = 1 ] && [ "$lo" = 0 ] && [ "$ni" = "$left" ] && [ "$fl" = shard/base/model.safetensors.index.json ] &&
      ok "np$np --include: $ni not included, $kb (vision position_ids) copied; the index read named" ||
      bad "np$np --include: not_included $ni, base-only $kb, left out $lo, file '$fl'"
  else bad "np$np sharded base, --include: merge failed"; cat b$np.log; fi
done

# The issue's whole path, as the README walks it: Hub directories in (a full
# CLIP base, F32/F16/BF16 vision tasks), a model directory out at 2 ranks
# (sharded by a small --out-shard-size), accepted by transformers' loading
# rules, equal to merge_ref, with the first task's config and a model card.
if larv 2 merge --quiet --method iso-c --larv tiered3 --base mix/base $MT --out-shard-size 20K \
     --out e2e/ --report e2e.json >e2e.log 2>&1; then
  check "e2e: directories in, a sharded model directory out: transformers' loading rules" \
    $PY "$LARV_SRC/tests/hub/hf_rules.py" e2e
  check "e2e: = merge_ref" $REF --method iso-c --base mix/base $MT --merged e2e --report e2e.json
  check "e2e: larv verify" $LARV verify e2e
  check "e2e: config.json from the first task, model card" $PY -c "
import json, sys
c = json.load(open('e2e/config.json'))
card = open('e2e/README.md').read()
sys.exit(not (c['architectures'] == ['CLIPVisionModel'] and 'iso-c' in card and 'mix/sun397' in card
              and len(json.load(open('e2e/model.safetensors.index.json'))['weight_map']) == $nt))"
else bad "e2e: merge into a model directory failed"; cat e2e.log; fi

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
larv 1 convert shard/base conv.safetensors >conv.log 2>&1 && cmp -s <(larv 1 inspect conv.safetensors --json | json /dev/stdin '[(t["name"],t["dtype"],t["shape"]) for t in j["tensors"]]') \
  <(larv 1 inspect shard/base --json | json /dev/stdin '[(t["name"],t["dtype"],t["shape"]) for t in j["tensors"]]') &&
  ok "convert DIR (sharded) -> file" || { bad "convert DIR"; cat conv.log; }
larv 1 plan --base mix/base --include 'vision_model.*' --tasks 3 --method iso-c --ranks 1,2 >plan.log 2>&1 &&
  grep -q "mix/base x 3 tasks, method iso-c, LARV tiered3: $nt tensors" plan.log &&
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
refuse "task tensor not in the base" 65 "two/sun397/model.safetensors: tensor 'text_model.|is not in the base (slim/base/model.safetensors)" 1 \
  --method ta --base slim/base --task slim/sun397 --task two/sun397
refuse "tensor in only some tasks: 20 listed + a count" 65 "tensor mismatches in the pool|the first 20|is in only 1 of the 2 tasks: mix/sun397/model.safetensors lacks it|... and " 2 \
  --method ta --base mix/base --task mix/sun397 --task two/stanford-cars
n20=$(grep -c "^  tensor '.*' is in only 1 of the 2 tasks" log || true)
[ "$n20" = 20 ] && ok "exactly 20 mismatches listed" || bad "$n20 mismatches listed, expected 20"
refuse "non-float dtype clash" 65 "clash/sun397/model.safetensors: tensor 'vision_model.embeddings.position_ids' is I32 but the base (clash/base/model.safetensors) has I64" 1 \
  --method ta --base clash/base --task clash/sun397 --task clash/stanford-cars
# the files a directory resolves to are inputs: no output may replace them
cp mix/resisc45/model.safetensors keep.bin
rc=0; larv 1 merge --quiet --method ta --base mix/base $MT --out mix/resisc45/model.safetensors >log 2>&1 || rc=$?
[ $rc = 64 ] && grep -q "is also an input" log && cmp -s keep.bin mix/resisc45/model.safetensors &&
  ok "--out onto a task directory's model.safetensors: refused (64), the input untouched" ||
  { bad "--out onto a resolved input: exit $rc"; cat log; }
rc=0; larv 1 convert shard/base shard/base/model-00001-of-00004.safetensors >log 2>&1 || rc=$?
[ $rc = 64 ] && grep -q "is also an input" log && ok "convert onto a shard of the input directory: refused (64)" ||
  { bad "convert onto an input shard: exit $rc"; cat log; }
refuse "--include matching nothing" 65 "--include matches none" 1 \
  --method ta --base mix/base $MT --include 'nothing.*'

finish
