#!/usr/bin/env bash
# The sbatch scripts of slurm/, unmodified, on a one-node Slurm started by
# slurm/local-cluster.sh (its own directory, $TMPDIR/larv-slurm-cli-test, and ports
# 6937-6938; `down` on exit, also when a check fails or the test is interrupted). A tiny synthetic pool, 2 ranks:
#   - synth.sbatch writes the pool (same bytes as a direct one-rank synth);
#   - merge-one-node.sbatch and merge-multi-node.sbatch (--nodes=1): COMPLETED with
#     exit 0:0, the job really ran 2 tasks (scontrol NumTasks) and larv 2 ranks (the
#     report's summary.ranks), `larv verify` passes, and the output has the bytes
#     of the same merge started with mpirun outside Slurm;
#   - sweep-array.sbatch: one array task per method, each COMPLETED and verified;
#   - a merge slowed by LARV_TEST_SLOW_WRITE_MS hits a one-minute time limit
#     (TIMEOUT, nothing at the target, the temporary file and journals left);
#     resubmitted unchanged, it resumes (some tensors skipped) to the same bytes
#     (cmp) and leaves nothing behind;
#   - `scontrol requeue` of a running merge (HDF5 output): the job restarts,
#     resumes, and gives the same bytes;
#   - `srun --mpi=none`, larv typed in a batch script of 2 tasks, and an MPI
#     singleton in a 2-task step are refused with exit 64 and the fix, before
#     anything is written; LARV_ALLOW_SINGLETON=1 runs one rank on purpose.
# Needs root (slurmd) and Debian's slurmctld slurmd slurm-client munge (.ci/deps.sh
# test installs them); as non-root it is skipped. Slurm checks time limits about
# every 30 s: every wait is a bounded poll.
set -euo pipefail
: "${LARV:?} ${LARV_SRC:?} ${MPIEXEC:?}"
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { echo "FAIL: $*"; fail=$((fail+1)); }
if [ "$(id -u)" != 0 ]; then
  echo "cli_slurm: skipped (slurmd must run as root)"; echo "0 passed, 0 failed"; exit 0
fi
export PATH=$PATH:/usr/sbin
for b in munged slurmctld slurmd sbatch srun scontrol; do
  command -v $b >/dev/null || { echo "FAIL: $b missing (bash .ci/deps.sh test)"; echo "0 passed, 1 failed"; exit 1; }
done

work=$(mktemp -d)
# A fixed directory (and ports): a run killed before its 'down' (a ctest timeout
# sends SIGKILL) leaves pid files there that the next run's 'down' stops first.
export LARV_SLURM_DIR=${TMPDIR:-/tmp}/larv-slurm-cli-test LARV_SLURM_PORT=${LARV_TEST_SLURM_PORT:-6937}
cluster="bash $LARV_SRC/slurm/local-cluster.sh"
S=$LARV_SRC/slurm
finish() {
  $cluster down || true
  if pgrep -f "$LARV_SLURM_DIR" >/dev/null; then
    echo "FAIL: a daemon of the local Slurm outlived 'down':"; pgrep -af "$LARV_SLURM_DIR"
  fi
  rm -rf "$work" "$LARV_SLURM_DIR"
}
trap finish EXIT
trap 'exit 143' TERM INT HUP   # the EXIT trap runs 'down' on these too
$cluster down || true
rm -rf "$LARV_SLURM_DIR"
if ! $cluster up; then
  tail -n 20 "$LARV_SLURM_DIR"/log/* || true
  echo "0 passed, 1 failed"; exit 1
fi
eval "$($cluster env)"
export PATH=$(dirname "$LARV"):$PATH   # the scripts run `larv` from PATH
unset LARV_ALLOW_SINGLETON LARV_TEST_SLOW_WRITE_MS LARV_TEST_FAIL_RANK
cd "$work"

field() { scontrol show job -o "$1" 2>/dev/null | grep -o "$2=[^ ]*" | head -1 | cut -d= -f2 || true; }
final() { case $1 in COMPLETED|FAILED|TIMEOUT|CANCELLED|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE) return 0;; esac; return 1; }
# Poll job $1 until it reaches a final state (at most $2 s); echo the state.
wait_job() {
  local s=""
  for _ in $(seq $(($2 * 2))); do
    s=$(field "$1" JobState); final "$s" && break; sleep 0.5
  done
  echo "$s"
}
# Submit (sbatch options... script args...) and wait; sets JID and STATE.
run_job() {
  JID=$(sbatch --parsable "$@") || { bad "sbatch $*"; JID=""; STATE=""; return 0; }
  STATE=$(wait_job "$JID" 600)
}
leftovers() { compgen -G "$1.larv-tmp*" || true; }
lines() { if [ -e "$1" ]; then wc -l <"$1"; else echo 0; fi; }
ranks_of() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["ranks"])' "$1" 2>/dev/null || echo "?"; }

# --- synth.sbatch, with sbatch --wait -------------------------------------------
rc=0; timeout 600 sbatch --wait --ntasks-per-node=2 -o synth.out "$S/synth.sbatch" tiny 4 pool 7 >submit.out || rc=$?
jid=$(sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' submit.out)
[ $rc = 0 ] && [ "$(field "$jid" JobState)" = COMPLETED ] && ok || { bad "synth.sbatch: rc $rc, state $(field "$jid" JobState)"; cat synth.out; }
grep -q "2 ranks -> pool" synth.out && ok || { bad "synth.sbatch did not run on 2 ranks"; cat synth.out; }
LARV_ALLOW_SINGLETON=1 $LARV synth --arch tiny --tasks 4 --seed 7 --out pool1 --quiet
for f in base task01 task02 task03 task04; do
  cmp -s "pool/$f.safetensors" "pool1/$f.safetensors" && ok || bad "synth.sbatch: pool/$f differs from a one-rank synth"
done

cat >job.yaml <<'EOF'
method: tsv
base: pool/base.safetensors
tasks: [pool/task01.safetensors, pool/task02.safetensors, pool/task03.safetensors, pool/task04.safetensors]
out: out/ref.safetensors
EOF
mkdir -p out direct
for f in merged.safetensors merged.h5; do
  $MPIEXEC -np 2 $LARV merge --job job.yaml --out direct/$f --quiet >/dev/null || bad "mpirun merge to direct/$f"
done

# --- the two merge scripts --------------------------------------------------------
check_merge() { # name out direct-reference log
  local name=$1 out=$2 ref=$3 log=$4
  [ "$STATE" = COMPLETED ] && [ "$(field "$JID" ExitCode)" = 0:0 ] && ok ||
    { bad "$name: state $STATE, exit $(field "$JID" ExitCode)"; cat "$log"; return 0; }
  [ "$(field "$JID" NumTasks)" = 2 ] && ok || bad "$name: NumTasks $(field "$JID" NumTasks), expected 2"
  [ "$(ranks_of "job-$JID.json")" = 2 ] && ok || bad "$name: the report says $(ranks_of "job-$JID.json") ranks, expected 2"
  $LARV verify "$out" >/dev/null && ok || bad "$name: larv verify $out failed"
  cmp -s "$out" "$ref" && ok || bad "$name: $out differs from the same merge under mpirun"
  [ -z "$(leftovers "$out")" ] && ok || bad "$name: leftovers $(leftovers "$out")"
}
run_job --ntasks-per-node=2 -o one.out "$S/merge-one-node.sbatch" job.yaml --quiet
check_merge merge-one-node.sbatch out/ref.safetensors direct/merged.safetensors one.out
run_job --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 -o multi.out "$S/merge-multi-node.sbatch" \
        job.yaml --quiet --out out/multi.h5
check_merge merge-multi-node.sbatch out/multi.h5 direct/merged.h5 multi.out

# --- the sweep: a job array, one method per task, 1 rank each ----------------------
grep -v '^method:' job.yaml >sweep.yaml
run_job --ntasks-per-node=1 -o 'sweep-%a.out' "$S/sweep-array.sbatch" sweep.yaml sweep/m-%m.safetensors --quiet
for i in 0 1 2 3 4; do
  st=$(wait_job "${JID}_$i" 300)
  [ "$st" = COMPLETED ] && ok || { bad "sweep-array task $i: $st"; cat "sweep-$i.out" || true; }
done
for m in ta ties tsv iso-c iso-cts; do
  f=sweep/m-$m.safetensors
  $LARV verify "$f" >/dev/null 2>&1 && ok || bad "sweep: $f missing or not verified"
  grep -q "\"method\": \"$m\"" "sweep/m-$m.json" 2>/dev/null && ok || bad "sweep: sweep/m-$m.json is not a $m report"
done

# --- a time limit mid-merge, then the same submission again ------------------------
# 36 tensors per rank x 5 s: 3 min uninterrupted, cut at 60-95 s by --time=1.
JID=$(LARV_TEST_SLOW_WRITE_MS=5000 sbatch --parsable --time=1 --ntasks-per-node=2 -o tl.out \
      "$S/merge-one-node.sbatch" job.yaml --quiet --out out/tl.safetensors)
STATE=$(wait_job "$JID" 400)
if [ "$STATE" = TIMEOUT ]; then ok; else bad "time limit: state $STATE, expected TIMEOUT"; cat tl.out; fi
[ ! -e out/tl.safetensors ] && ok || bad "time limit: out/tl.safetensors exists after the cut"
n0=$(( $(lines out/tl.safetensors.larv-tmp.journal.0) + $(lines out/tl.safetensors.larv-tmp.journal.1) ))
[ -e out/tl.safetensors.larv-tmp ] && [ "$n0" -gt 4 ] && ok ||
  bad "time limit: no temporary file, or journals with $n0 lines"
run_job --ntasks-per-node=2 -o tl2.out "$S/merge-one-node.sbatch" job.yaml --quiet --out out/tl.safetensors
[ "$STATE" = COMPLETED ] && ok || { bad "time limit: the resubmission ended $STATE"; cat tl2.out; }
skipped=$(sed -n 's/.*resume: skipped \([0-9]*\) of 72 .*/\1/p' tl2.out)
[ "${skipped:-0}" -gt 0 ] && [ "$skipped" -lt 72 ] && ok || { bad "time limit: the resubmission did not resume"; cat tl2.out; }
cmp -s out/tl.safetensors direct/merged.safetensors && ok || bad "time limit: the resumed output differs"
[ -z "$(leftovers out/tl.safetensors)" ] && ok || bad "time limit: leftovers $(leftovers out/tl.safetensors)"
echo "time limit: cut with $((n0 - 2)) tensors journalled; the resubmission skipped ${skipped:-0} of 72"

# --- scontrol requeue of a running merge (HDF5 output) -----------------------------
JID=$(LARV_TEST_SLOW_WRITE_MS=600 sbatch --parsable --ntasks-per-node=2 -o rq.out \
      "$S/merge-one-node.sbatch" job.yaml --quiet --out out/rq.h5)
n=0
for _ in $(seq 240); do
  n=$(lines out/rq.h5.larv-tmp.journal.1); [ "$n" -ge 5 ] && break
  final "$(field "$JID" JobState)" && break; sleep 0.5
done
if [ "$n" -ge 5 ] && scontrol requeue "$JID"; then
  ok
  # Slurm holds a requeued job ~2 min (EligibleTime); let it start now
  for _ in $(seq 60); do [ "$(field "$JID" JobState)" = PENDING ] && break; sleep 0.5; done
  # Slurm's hold is what lets the first run's processes finish exiting; before
  # cutting it short, wait until they are gone (an ASan rank on a loaded
  # machine takes seconds to exit; slurmd does not launch a job again while a
  # step of its earlier run remains, and the restart then fails)
  for _ in $(seq 240); do
    pgrep -f "out/rq\.h5" >/dev/null || pgrep -f "slurmstepd: \[$JID\." >/dev/null || break
    sleep 0.5
  done
  scontrol update JobId="$JID" StartTime=now || true
  STATE=$(wait_job "$JID" 400)
  [ "$STATE" = COMPLETED ] && [ "$(field "$JID" Restarts)" = 1 ] && ok ||
    { bad "requeue: state $STATE, restarts $(field "$JID" Restarts)"; cat rq.out; }
  grep -q "restart 1" rq.out && grep -q "resume: skipped [1-9]" rq.out && ok ||
    { bad "requeue: the restarted job did not resume"; cat rq.out; }
  cmp -s out/rq.h5 direct/merged.h5 && ok || bad "requeue: the resumed HDF5 output differs"
  [ -z "$(leftovers out/rq.h5)" ] && ok || bad "requeue: leftovers $(leftovers out/rq.h5)"
else
  bad "requeue: the job never wrote 5 tensors (journal: $n lines, state $(field "$JID" JobState))"; cat rq.out
fi

# --- launches that did not wire up MPI: refused, nothing written --------------------
refused() { # name out pattern
  local name=$1 out=$2 pat=$3
  [ "$STATE" = FAILED ] && [ "$(field "$JID" ExitCode)" = 64:0 ] && ok ||
    { bad "$name: state $STATE, exit $(field "$JID" ExitCode), expected FAILED 64:0"; cat "$name.out"; }
  grep -q -- "$pat" "$name.out" && ok || { bad "$name: the message does not name the fix"; cat "$name.out"; }
  [ ! -e "$out" ] && [ -z "$(leftovers "$out")" ] && ok || bad "$name: something was written at $out"
}
run_job --ntasks-per-node=2 -o none.out --wrap "srun --mpi=none larv merge --job job.yaml --out out/none.h5"
refused none out/none.h5 "srun --mpi=pmix"
run_job --ntasks-per-node=2 -o hand.out --wrap "larv merge --job job.yaml --out out/hand.h5"
refused hand out/hand.h5 "without srun or mpirun"
# a singleton in an srun step of 2 tasks (what an MPI that falls back to singletons
# under a PMI it cannot use does), simulated in the environment
rc=0; env SLURM_STEP_NUM_TASKS=2 SLURM_NTASKS=2 SLURM_PROCID=0 PMI_RANK=0 \
  $LARV merge --job job.yaml --out out/single.h5 >single.out 2>&1 || rc=$?
[ $rc = 64 ] && grep -q "MPI sees 1 rank" single.out && [ ! -e out/single.h5 ] && ok ||
  { bad "singleton step: rc $rc"; cat single.out; }
env SLURM_NTASKS=2 $LARV merge --help >/dev/null 2>&1 && ok || bad "larv merge --help refused in an allocation"
run_job --ntasks-per-node=2 -o one-rank.out \
        --wrap "LARV_ALLOW_SINGLETON=1 larv merge --job job.yaml --out out/one-rank.h5 --quiet"
[ "$STATE" = COMPLETED ] && $LARV verify out/one-rank.h5 >/dev/null && ok ||
  { bad "LARV_ALLOW_SINGLETON=1: state $STATE"; cat one-rank.out; }

$cluster down
pgrep -f "$LARV_SLURM_DIR" >/dev/null && bad "a daemon outlived 'down': $(pgrep -af "$LARV_SLURM_DIR")" || ok
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
