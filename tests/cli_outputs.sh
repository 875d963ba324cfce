#!/usr/bin/env bash
# An output is never an input: every path `larv merge` and `larv convert` write
# (the output, each shard of a sharded output, the temporaries, the journals,
# the report and its temporary) is checked against every file they read (the
# base, the tasks, every shard their indexes list, the job file) by identity
# (device and inode: symlinks and hard links count), and the outputs against
# each other. Each case is refused with exit 64 naming both paths, every input
# keeps every byte, and nothing appears at the target. And all outputs of a run
# appear together: a report that cannot be written leaves no model behind. And
# a second run on a target that a first one is writing fails, harming neither.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$work"
$LARV synth --arch tiny --tasks 2 --seed 13 --out pool --quiet
B=pool/base.safetensors T1=pool/task01.safetensors T2=pool/task02.safetensors
mkdir -p saved && cp -p pool/* saved/

# refused NAME "TEXT1|TEXT2" OUT FILE... -- command: exit 64, messages, nothing
# at OUT (unless OUT is an input), every FILE byte-identical to FILE.before
refused() {
  local name=$1 texts=$2 out=$3; shift 3
  local files=()
  while [ "$1" != -- ]; do files+=("$1"); cp "$1" "$1.before"; shift; done
  shift
  local rc=0 why=""
  timeout 120 "$@" >log 2>&1 || rc=$?
  [ $rc = 64 ] || why="exit $rc, expected 64"
  IFS='|' read -ra want <<<"$texts"
  for t in "${want[@]}"; do grep -qF -- "$t" log || why="$why; message lacks '$t'"; done
  for f in "${files[@]}"; do cmp -s "$f" "$f.before" || why="$why; $f was changed"; rm -f "$f.before"; done
  local isin=0
  for f in "${files[@]}"; do [ "$f" -ef "$out" ] && isin=1; done
  [ $isin = 1 ] || [ ! -e "$out" ] || why="$why; $out was written"
  if [ -z "$why" ]; then ok "$name: $(grep -m1 'larv' log)"; else bad "$name: ${why#; }"; cat log; fi
}
merge="$MPIEXEC -np 2 $LARV merge --quiet --method ta"

# the report
refused report-is-a-task "the report $T1 is also an input" o.safetensors $T1 -- \
  $merge --base $B --task $T1 --task $T2 --out o.safetensors --report $T1
ln $B base-link.json
refused report-hardlink-to-base "the report base-link.json is also an input|$B" o.safetensors $B -- \
  $merge --base $B --task $T1 --task $T2 --out o.safetensors --report base-link.json
refused report-is-the-output "is also the report" o.safetensors -- \
  $merge --base $B --task $T1 --task $T2 --out o.safetensors --report o.safetensors
# the output through a hard link, and the temporary output or a journal being an input
ln $T2 out-link.safetensors
refused out-hardlink-to-task "out-link.safetensors is also an input|$T2" out-link.safetensors $T2 -- \
  $merge --base $B --task $T1 --task $T2 --out out-link.safetensors
# (hard links: an input under the name the temporary output or a journal takes)
cp $T2 x.safetensors; ln x.safetensors o.safetensors.larv-tmp
refused tmp-is-a-task "the temporary output o.safetensors.larv-tmp is also an input|x.safetensors" o.safetensors x.safetensors -- \
  $merge --base $B --task $T1 --task x.safetensors --out o.safetensors
rm o.safetensors.larv-tmp; ln x.safetensors o.safetensors.larv-tmp.journal.1
refused journal-is-a-task "a journal o.safetensors.larv-tmp.journal.1 is also an input|x.safetensors" o.safetensors x.safetensors -- \
  $merge --base $B --task $T1 --task x.safetensors --out o.safetensors
rm o.safetensors.larv-tmp.journal.1
# the job file
printf 'method: ta\nbase: pool/base.safetensors\ntasks: [pool/task01.safetensors]\nout: o.safetensors\nreport: job.yaml\n' >job.yaml
refused report-is-the-job-file "the report" o.safetensors job.yaml -- $merge --job job.yaml

# a sharded input: its index names a shard that a sharded output would write
mkdir sh
$LARV convert $T2 sh/t2.safetensors.index.json >/dev/null
mv sh/t2.safetensors.index.json sh/in.safetensors.index.json   # still lists sh/t2-00001-of-00001.safetensors
shard=sh/t2-00001-of-00001.safetensors
refused merge-shard-over-input "the output shard $shard is also an input" sh/t2.safetensors.index.json $shard -- \
  $merge --base $B --task $T1 --task sh/in.safetensors.index.json --out sh/t2.safetensors.index.json
refused convert-shard-over-input "the output shard $shard is also an input" sh/t2.safetensors.index.json $shard -- \
  $LARV convert sh/in.safetensors.index.json sh/t2.safetensors.index.json
# convert onto its own input through a symlinked directory
ln -s sh sh-link
refused convert-through-symlink "is also an input" sh-link/in.safetensors.index.json sh/in.safetensors.index.json $shard -- \
  $LARV convert sh/in.safetensors.index.json sh-link/in.safetensors.index.json

# all outputs appear together or none: a report that cannot be written fails
# the merge (exit 74) and leaves no model at the target, and an earlier model
# there keeps every byte
for out in o2.safetensors o2.h5; do
  rc=0
  $merge --base $B --task $T1 --task $T2 --out $out --report nodir/r.json >log 2>&1 || rc=$?
  if [ $rc = 74 ] && grep -qF "nodir/r.json" log && [ ! -e $out ] && [ -z "$(compgen -G "$out.larv-tmp*" || true)" ]; then
    ok "report unwritable: exit 74, no $out"
  else bad "report unwritable: exit $rc, $out $( [ -e $out ] && echo exists || echo absent)"; cat log; fi
done
$merge --base $B --task $T1 --out o3.safetensors >/dev/null 2>&1; cp o3.safetensors o3.before
rc=0; $merge --base $B --task $T1 --task $T2 --out o3.safetensors --report nodir/r.json >log 2>&1 || rc=$?
[ $rc = 74 ] && cmp -s o3.safetensors o3.before && ok "report unwritable: the earlier output is untouched" ||
  { bad "report unwritable over an earlier output: exit $rc"; cat log; }

# two runs, one target: while a merge holds the target (its ranks stopped with
# SIGSTOP once it writes, so that the overlap does not depend on timing), a
# second merge on the same output fails at once (exit 74) and harms neither:
# the first finishes with exactly the bytes of an undisturbed run
$merge --base $B --task $T1 --task $T2 --out ref-two.safetensors >/dev/null 2>&1
LARV_TEST_SLOW_WRITE_MS=200 timeout 300 $merge --base $B --task $T1 --task $T2 --out two.safetensors >logA 2>&1 &
A=$!
for _ in $(seq 1200); do [ -s two.safetensors.larv-tmp.journal.0 ] && break; sleep 0.05; done
pids=$(for p in $(pgrep -x larv || true); do grep -qa -- two.safetensors /proc/$p/cmdline 2>/dev/null && echo $p; done; true)
[ -z "$pids" ] || kill -STOP $pids || true
rc=0; timeout 120 $MPIEXEC -np 2 $LARV merge --quiet --method tsv --base $B --task $T1 --task $T2 \
  --out two.safetensors >log 2>&1 || rc=$?
[ -z "$pids" ] || kill -CONT $pids || true
rcA=0; wait $A || rcA=$?
if [ -n "$pids" ] && [ $rc = 74 ] && grep -qF "another larv run is writing this target" log && [ $rcA = 0 ] &&
   cmp -s two.safetensors ref-two.safetensors && [ ! -e two.safetensors.larv-lock ]; then
  ok "two runs, one target: the second exits 74, the first's output is intact"
else
  bad "two runs, one target: ranks '$pids', second exit $rc, first exit $rcA"; cat log logA
fi

# what is allowed still works: a report beside the output, an earlier output replaced
if $merge --base $B --task $T1 --task $T2 --out o.safetensors --report o.json >log 2>&1 &&
   $merge --base $B --task $T1 --task $T2 --out o.safetensors --report o.json >log 2>&1 &&
   $LARV verify o.safetensors >/dev/null && [ -s o.json ]; then ok "a normal merge, twice over its own output"
else bad "a normal merge fails"; cat log; fi
for f in base task01 task02; do cmp -s pool/$f.safetensors saved/$f.safetensors || bad "pool/$f.safetensors changed"; done

finish
