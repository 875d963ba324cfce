#!/usr/bin/env bash
# Sweeps (cli/template.h, mpi/outputs.h): one run with list-valued options
# (--method, --lambda, --larv, --s-low/--s-mid/--s-high, --ties-k) writes one
# output per combination, named by the --out template. Each output is byte for
# byte the single merge with the same settings (every method, LARV off and on,
# at 1, 2 and 3 ranks), passes `larv verify` (its own provenance and
# checksums), and has its entry in the report. Job files take YAML lists.
# Refused (exit 64, nothing written): a list without a template, two outputs
# with one name (also the same number spelled twice), an unknown or unclosed
# placeholder, a bad item, an output that is an input. Numbers are spelled
# the shortest way that reads back (0.50 -> 0.5, 1e-1 -> 0.1). --resume: a
# killed sweep resumes each output on its own (one restarts, one resumes).
# A directory template gives model directories (tensors equal to the single
# merges); with --larv-cache (cold, warm) the outputs are those without.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$work"
$LARV synth --arch tiny --tasks 3 --seed 5 --out pool --quiet
P=(--base pool/base.safetensors --task pool/task01.safetensors --task pool/task02.safetensors
   --task pool/task03.safetensors)
nfiles() { find "$1" -type f 2>/dev/null | wc -l; }

# 1. every method x LARV off/tiered3 (x 2 lambdas at 2 ranks) against single
# merges (one rank: without mpirun, as a singleton; three: LARV on, and off for iso-c)
for np in 1 2 3; do
  lams=1; [ $np = 2 ] && lams=0.5,1
  mkdir -p s$np
  check larv_at $np merge "${P[@]}" --method ta,ties,tsv,iso-c,iso-cts --larv off,tiered3 \
    --lambda $lams --out "s$np/{method}-{larv}-{lambda}.safetensors" --report s$np.json --quiet >/dev/null
  for m in ta ties tsv iso-c iso-cts; do
    for r in off tiered3; do
      [ $np = 3 ] && [ $r = off ] && [ $m != iso-c ] && continue
      for l in ${lams//,/ }; do
        [ $l = 0.5 ] && [ $m != iso-c ] && continue
        check larv_at $np merge "${P[@]}" --method $m --larv $r --lambda $l \
          --out one.safetensors --quiet >/dev/null
        check cmp one.safetensors "s$np/$m-$r-$l.safetensors"
      done
    done
  done
done
# each output verifies (its provenance and checksums); the report has one entry each
for f in s2/*.safetensors; do check $LARV verify "$f" >/dev/null; done
check test "$(nfiles s2)" = 20
check /usr/bin/python3 - s2.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
o = d["outputs"]
assert len(o) == 20, len(o)
names = [e["summary"]["output"] for e in o]
assert len(set(names)) == 20
for e in o:
    m, r, l = e["method"], e["larv"]["rule"], e["lambda"]
    assert e["summary"]["output"] == "s2/%s-%s-%s.safetensors" % (m, r, "%g" % l), e["summary"]["output"]
    scales = [g["scale"] for g in e["layers"]]
    assert (r == "off") == all(s == 1.0 for s in scales), (r, scales)
PY

# 1b. an output with LARV off takes its method's M from the analysis' scratch
# file when an output of that method has LARV on: still its single merge byte
# for byte, also where M could be computed another way (ScaLAPACK teams,
# single precision, alpha != 1)
mkdir -p sp
for cfgs in "--ranks-per-matrix 2" "--precision single" "--alpha 0.5,1,2"; do
  ms="tsv iso-cts iso-c"; [ "${cfgs%% *}" = --alpha ] && ms=tsv # TSV-M's option
  check env LARV_TEAM_MIN_ORDER=8 $MPIEXEC -np 2 $LARV merge "${P[@]}" $cfgs --method "${ms// /,}" \
    --larv off,tiered3 --out 'sp/{method}-{larv}.safetensors' --quiet >/dev/null
  for m in $ms; do for r in off tiered3; do
    rm -f one.safetensors
    check env LARV_TEAM_MIN_ORDER=8 $MPIEXEC -np 2 $LARV merge "${P[@]}" $cfgs --method $m --larv $r \
      --out one.safetensors --quiet >/dev/null
    check cmp one.safetensors sp/$m-$r.safetensors
  done; done
  rm -f sp/*
done

# 2. TIES k and the LARV tier scales as lists
mkdir -p k
check $MPIEXEC -np 2 $LARV merge "${P[@]}" --method ties --ties-k 0.1,0.3 --s-low 0.25,0.5 \
  --out 'k/ties-{ties_k}-{s_low}.safetensors' --quiet >/dev/null
for kk in 0.1 0.3; do for sl in 0.25 0.5; do
  check $MPIEXEC -np 2 $LARV merge "${P[@]}" --method ties --ties-k $kk --s-low $sl \
    --out one.safetensors --quiet >/dev/null
  check cmp one.safetensors k/ties-$kk-$sl.safetensors
done; done
# --ties-k applies to TIES outputs only: ta once, ties twice
mkdir -p k2
check $MPIEXEC -np 2 $LARV merge "${P[@]}" --method ta,ties --ties-k 0.1,0.3 --larv off \
  --out 'k2/{method}-{ties_k}.safetensors' --quiet >/dev/null
check test "$(cd k2 && ls | tr '\n' ' ')" = "ta-0.1.safetensors ties-0.1.safetensors ties-0.3.safetensors "

# 3. how numbers are spelled: the shortest form that reads back; the default lambda
mkdir -p n
check $LARV merge "${P[@]}" --method ta --lambda 5e-1,1.0,0.125000 --larv off \
  --out 'n/{lambda}.safetensors' --quiet >/dev/null
check test "$(cd n && ls | tr '\n' ' ')" = "0.125.safetensors 0.5.safetensors 1.safetensors "
mkdir -p d
check $LARV merge "${P[@]}" --method ta,iso-c --larv off --out 'd/{method}-{lambda}-{s_high}.safetensors' \
  --quiet >/dev/null
check test "$(cd d && ls | tr '\n' ' ')" = "iso-c-1-1.2.safetensors ta-0.3-1.2.safetensors "

# 4. a job file with YAML lists gives the same outputs as the flags
cat >job.yaml <<'YAML'
method: [iso-c, tsv]
base: pool/base.safetensors
tasks: [pool/task01.safetensors, pool/task02.safetensors, pool/task03.safetensors]
larv: [off, tiered3]
lambda: [0.5, 1]
out: 'j/{method}-{larv}-{lambda}.safetensors'
YAML
mkdir -p j
check $MPIEXEC -np 2 $LARV merge --job job.yaml --quiet >/dev/null
for f in j/*; do check cmp "$f" "s2/${f#j/}"; done
check test "$(nfiles j)" = 8

# 4b. a directory template: each output a model directory (cli/outdir.h) whose
# tensors are the single merge's bytes, at 2 ranks
same_tensors() { # tensor bytes of a model directory's weights and a file
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, os, struct, sys
def load(p):
    if os.path.isdir(p):
        p = os.path.join(p, "model.safetensors")
    raw = open(p, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8]); h = json.loads(raw[8:8 + n]); h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
a, b = load(sys.argv[1]), load(sys.argv[2])
sys.exit(0 if a == b and len(a) > 0 else 1)
PY
}
mkdir -p sw
check $MPIEXEC -np 2 $LARV merge "${P[@]}" --method ta,iso-c --lambda 0.5,1 --larv tiered3 \
  --out 'sw/{method}-{lambda}/' --quiet >/dev/null
check test "$(cd sw && ls | tr '\n' ' ')" = "iso-c-0.5 iso-c-1 ta-0.5 ta-1 "
for m in ta iso-c; do for l in 0.5 1; do
  check $MPIEXEC -np 2 $LARV merge "${P[@]}" --method $m --lambda $l --larv tiered3 \
    --out one.safetensors --quiet >/dev/null
  check same_tensors sw/$m-$l one.safetensors
  check test -f sw/$m-$l/larv-report.json -a -f sw/$m-$l/README.md
  check $LARV verify sw/$m-$l/model.safetensors >/dev/null
done; done
check test -z "$(compgen -G 'sw/*.larv-*' || true)"

# 4c. --larv-cache: a sweep with a cold and a warm cache equals one without
# (s2); a sweep mixing TSV-M's proxy route with another's does not use it
for c in c1 c2; do
  mkdir -p $c
  check $MPIEXEC -np 2 $LARV merge "${P[@]}" --method ta,iso-c --larv off,tiered3 --lambda 1 \
    --larv-cache sweep.pcache --out "$c/{method}-{larv}-{lambda}.safetensors" >$c.log 2>&1
  for f in $c/*; do check cmp "$f" "s2/${f#$c/}"; done
  check test "$(nfiles $c)" = 4
done
check grep -q "proxies written to cache sweep.pcache" c1.log
check grep -q "proxies from cache sweep.pcache" c2.log
mkdir -p c3
check $MPIEXEC -np 2 $LARV merge "${P[@]}" --method tsv,iso-c --larv tiered3 --lambda 1 \
  --larv-cache sweep.pcache --out "c3/{method}-{larv}-{lambda}.safetensors" >c3.log 2>&1
for f in c3/*; do check cmp "$f" "s2/${f#c3/}"; done
check grep -q "cache sweep.pcache is not used: this run mixes TSV-M" c3.log

# 5. refusals: exit 64, nothing written
refused() { # expected message fragment, then the merge options
  local want=$1; shift
  rm -rf r; mkdir r
  local rc=0; $LARV merge "${P[@]}" "$@" --quiet >r.log 2>&1 || rc=$?
  if [ $rc = 64 ] && grep -q -- "$want" r.log && [ "$(nfiles r)" = 0 ]; then
    pass=$((pass+1)); else echo "FAIL: rc $rc for $*: $(cat r.log)"; fail=$((fail+1)); fi
}
refused "names one" --method ta --lambda 0.1,0.2 --out r/x.safetensors
refused "two outputs the name r/x-0.5" --method ta --lambda 0.5,0.50 --out 'r/x-{lambda}.safetensors'
refused "two outputs the name" --method ta,tsv --lambda 0.5,1 --out 'r/x-{lambda}.safetensors'
refused "unknown placeholder '{foo}'" --method ta --out 'r/x-{foo}.safetensors'
refused "unclosed placeholder" --method ta --out 'r/x-{lambda.safetensors'
refused "empty item" --method ta --lambda 0.1,,0.2 --out 'r/x-{lambda}.safetensors'
refused "not in \[-100, 100\]" --method ta --lambda 0.1,200 --out 'r/x-{lambda}.safetensors'
refused "not one of" --method ta,nope --out 'r/x-{method}.safetensors'
refused "s_low <= s_mid" --method iso-c --s-low 0.5,1.5 --out 'r/x-{s_low}.safetensors'
refused "merge ties in a run of its own" --method ta,ties --exclude '*bias*' \
  --out 'r/{method}.safetensors'
mkdir -p in; cp pool/task01.safetensors in/ta.safetensors
refused "is also an input" --method ta,tsv --task in/ta.safetensors --out 'in/{method}.safetensors'

# 6. --resume: a killed sweep resumes each output on its own. (a) both
# outputs' journals kept: both resume (tensors written to both are skipped,
# LARV's proxies taken from the journal); (b) one output's journals removed:
# it restarts, the other resumes. Both equal the uninterrupted sweep.
kill_sweep() {
  rm -rf rs; mkdir -p rs
  LARV_TEST_SLOW_WRITE_MS=100 timeout 120 $MPIEXEC -np 2 $LARV merge "${P[@]}" --method iso-c \
    --larv off,tiered3 --out 'rs/{larv}.safetensors' --quiet >killed.log 2>&1 &
  local mp=$! victim=""
  for _ in $(seq 600); do
    [ "$(cat rs/tiered3.safetensors.larv-tmp.journal.1 2>/dev/null | wc -l)" -ge 4 ] && break
    sleep 0.05
  done
  for _ in $(seq 40); do
    for p in $(pgrep -x larv || true); do
      if grep -qa -- "rs/{larv}" /proc/$p/cmdline 2>/dev/null &&
         tr '\0' '\n' </proc/$p/environ 2>/dev/null | grep -qE '^(OMPI_COMM_WORLD_RANK|PMI_RANK|PMIX_RANK)=1$'; then
        victim=$p
      fi
    done
    [ -n "$victim" ] && break
    sleep 0.1
  done
  check test -n "$victim"
  [ -n "$victim" ] && kill -KILL "$victim"
  wait $mp || true
  check test ! -e rs/off.safetensors -a ! -e rs/tiered3.safetensors
}
resume_sweep() {
  check $MPIEXEC -np 2 $LARV merge "${P[@]}" --method iso-c --larv off,tiered3 \
    --out 'rs/{larv}.safetensors' --resume >resume.log 2>&1
  check cmp rs/off.safetensors s2/iso-c-off-1.safetensors
  check cmp rs/tiered3.safetensors s2/iso-c-tiered3-1.safetensors
  check test -z "$(compgen -G 'rs/*.larv-*' || true)"
}
kill_sweep
resume_sweep
check grep -q "resume: skipped [1-9][0-9]* of .*rs/off.safetensors" resume.log
check grep -q "resume: skipped [1-9][0-9]* of .*rs/tiered3.safetensors" resume.log
kill_sweep
rm -f rs/off.safetensors.larv-tmp.journal.*
resume_sweep
check grep -q "nothing to resume" resume.log
check grep -q "resume: skipped [1-9][0-9]* of .*rs/tiered3.safetensors" resume.log

finish
