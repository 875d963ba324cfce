#!/usr/bin/env bash
# larv merge from a job file (paths relative to the job file, flags override
# it), the report's layer table, provenance and verify, and every command's --help.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
$LARV synth --arch tiny --tasks 2 --seed 3 --out "$work/jobs/pool" --quiet
cat >"$work/jobs/job.yaml" <<'YAML'
method: tsv
base: pool/base.safetensors
tasks: [pool/task01.safetensors, pool/task02.safetensors]
out: merged.h5
report: merged.json
larv:
  rule: tiered2
  s_low: 0.6
YAML
cd "$work"   # not the job's directory: paths must resolve against the job file
check $MPIEXEC -np 2 $LARV merge --job jobs/job.yaml --quiet >out.txt
check test -f jobs/merged.h5
check test -f jobs/merged.json
check grep -q "LARV layer table (rule tiered2" out.txt
check /usr/bin/python3 - jobs/merged.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["method"] == "tsv" and r["larv"]["rule"] == "tiered2" and r["larv"]["s_low"] == 0.6
names = [l["name"] for l in r["layers"]]
assert names == ["embed", "0", "1", "2", "3", "head"], names
for l in r["layers"][1:-1]:
    for k in ("effective_rank_contrast", "conflict", "score", "scale"):
        assert isinstance(l[k], float), (l, k)
    assert l["scale"] in (0.6, 1.2)
s = r["summary"]
assert s["ranks"] == 2 and len(s["peak_rss_bytes_per_rank"]) == 2 and s["bytes_written"] > 0
PY
check $LARV verify jobs/merged.h5
# a flag overrides the job: another method, another output
check $LARV merge --job jobs/job.yaml --method iso-c --out "$work/other.safetensors" --quiet >/dev/null
check $LARV verify "$work/other.safetensors"
check sh -c "$LARV inspect $work/other.safetensors --json | grep -q larv_provenance || $LARV inspect $work/other.safetensors | grep -q 'vision_model'"
# every command teaches
# plan: layers while ranks <= layer groups, then tensors, then teams (tiny: 4 blocks, 26 matrices)
check sh -c "$LARV plan --arch tiny --tasks 3 --method tsv --ranks 2,6,7,60 > plan.txt"
check grep -Eq '^ +6 +6 +1 +layers' plan.txt
check grep -Eq '^ +7 +7 +1 +tensors' plan.txt
check grep -Eq '^ +60 +30 +2 +tensors' plan.txt
check sh -c "$LARV plan --base jobs/pool/base.safetensors --tasks 2 --method iso-c --ranks 3 | grep -q layers"
check sh -c "! $LARV plan --arch nope --tasks 2 --method ta 2>/dev/null"
# plan parses like merge: whole numbers in range, no empty list items (exit 64)
for bad in "--tasks 2x" "--tasks 2 --ranks-per-matrix -3" "--tasks 2 --ranks 2,,3" "--tasks 2 --larv nope"; do
  check sh -c "$LARV plan --arch tiny --method ta $bad >/dev/null 2>&1; test \$? = 64"
done
# merge refuses a value outside its range with the range named, from a flag as from a job
check sh -c "$LARV merge --job jobs/job.yaml --s-low -1 2>&1 >/dev/null | grep -qF -- '--s-low: -1 is not in [0, 10]'"
printf 'larv:\n  s_low: -1\n' >bad.yaml
check sh -c "$LARV merge --job bad.yaml 2>&1 >/dev/null | grep -qF -- \"key 'larv.s_low': -1 is not in [0, 10]\""
for c in merge inspect convert synth verify plan; do
  check sh -c "$LARV $c --help | grep -qi 'usage'"
done
check sh -c "$LARV --help | grep -q 'commands:'"
check sh -c "! $LARV frobnicate 2>/dev/null"
finish
