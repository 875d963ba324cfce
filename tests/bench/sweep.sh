#!/usr/bin/env bash
# Sweep benchmark (issue 13, items 1 and 2; not part of CI). On the synthetic
# pool ARCH x TASKS at R ranks, for each method of --methods:
#   single off / single tiered3  one `larv merge` at one lambda (the cost of each
#                                separate run of the grid: λ is only a factor)
#   sweep 2                      --larv off,tiered3 at one lambda (2 outputs)
#   sweep 2N                     --larv off,tiered3 --lambda L1..LN (2N outputs)
#   torch grid                   torch_baseline.py --lambdas L1..LN (LARV off: the
#                                baseline has no LARV; its SVDs computed once)
# and (--all5) the five methods with tiered3 in one run against five runs.
# Each time is the minimum of --reps runs, wall (mpirun start-up included) and
# CPU (user + system of all ranks, bash's time on mpirun: far less sensitive
# to other load on a shared machine); the load average before each run is logged. Outputs go to a temporary folder
# under TMPDIR (2N x the model's size at a time) and are removed.
#
#   bash tests/bench/sweep.sh [--arch vit-b-32] [--tasks 8] [--ranks 2] [--reps 1]
#        [--methods "iso-c tsv"] [--lambdas 0.1,0.2,...,1.0] [--no-torch] [--no-all5]
#        [--pools /work/pools] [--larv-bin build/larv] [--threads 2]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
arch=vit-b-32 tasks=8 np=2 reps=1 methods="iso-c tsv" lambdas=0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0
torch=1 all5=1 pools=/work/pools bin="$src/build/larv" threads=$(nproc)
while [ $# -gt 0 ]; do
  case $1 in
    --arch) arch=$2; shift ;;       --tasks) tasks=$2; shift ;;
    --ranks) np=$2; shift ;;        --reps) reps=$2; shift ;;
    --methods) methods=$2; shift ;; --lambdas) lambdas=$2; shift ;;
    --no-torch) torch=0 ;;          --no-all5) all5=0 ;;
    --pools) pools=$2; shift ;;     --larv-bin) bin=$2; shift ;;
    --threads) threads=$2; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "sweep.sh: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
PY=/usr/bin/python3
. "$here/pool.sh"
bench_pool "$bin" "$pools" "$arch" "$tasks"
work=$(mktemp -d "${TMPDIR:-/tmp}/larv-sweep.XXXXXX"); trap 'rm -rf "$work"' EXIT
log="$work/runs.tsv"
nl=$(echo "$lambdas" | tr ',' '\n' | wc -l)
l1=${lambdas%%,*}
$PY -c "import torch" 2>/dev/null || { [ "$torch" = 1 ] && echo "sweep.sh: torch is not installed: no baseline" >&2; torch=0; }

# time LABEL METHOD CMD... : one timed run, appended to the log
timed() {
  local label=$1 m=$2; shift 2
  local l0 t0 t1 u k
  l0=$(cut -d' ' -f1 /proc/loadavg); t0=$(date +%s.%N)
  local TIMEFORMAT='%U %S' # bash's time: CPU of the command and all its children
  { time "$@" >"$work/last.log" 2>&1 || { cat "$work/last.log" >&2; exit 1; }; } 2>"$work/cpu"
  t1=$(date +%s.%N)
  read -r u k < <(tail -n1 "$work/cpu")
  printf '%s\t%s\t%.2f\t%s\t%.2f\n' "$label" "$m" "$(echo "$t1 - $t0" | bc)" "$l0" "$(echo "$u + $k" | bc)" | tee -a "$log" >&2
  rm -rf "$work/o"; mkdir -p "$work/o"
}
mkdir -p "$work/o"
merge() { mpirun -np "$np" --oversubscribe "$bin" merge "${targs[@]}" --quiet "$@"; }
for r in $(seq 1 "$reps"); do
  for m in $methods; do
    timed single_off "$m" merge --method "$m" --larv off --lambda "$l1" --out "$work/o/x.safetensors"
    timed single_tiered3 "$m" merge --method "$m" --larv tiered3 --lambda "$l1" --out "$work/o/x.safetensors"
    timed sweep2 "$m" merge --method "$m" --larv off,tiered3 --lambda "$l1" \
      --out "$work/o/{larv}.safetensors"
    timed sweep2N "$m" merge --method "$m" --larv off,tiered3 --lambda "$lambdas" \
      --out "$work/o/{larv}-{lambda}.safetensors"
    if [ "$torch" = 1 ]; then
      timed torch_grid "$m" $PY "$here/torch_baseline.py" --method "$m" --pool "$pool" \
        --tasks "$tasks" --threads "$threads" --lambdas "$lambdas" --out "$work/o/t-{lambda}.safetensors"
    fi
  done
  if [ "$all5" = 1 ]; then
    timed five_in_one all merge --method ta,ties,tsv,iso-c,iso-cts --larv tiered3 \
      --out "$work/o/{method}.safetensors"
    for m in ta ties tsv iso-c iso-cts; do
      timed five_single "$m" merge --method "$m" --larv tiered3 --out "$work/o/x.safetensors"
    done
  fi
done

echo
echo "vit: $arch x $tasks, $np ranks, $nl lambdas ($lambdas), min of $reps; $(date -u '+%Y-%m-%d %H:%M UTC'), larv $(git -C "$src" rev-parse --short HEAD)"
$PY - "$log" "$nl" <<'PY'
import sys, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
nl = int(sys.argv[2])
M5 = ["ta", "ties", "tsv", "iso-c", "iso-cts"]
for col, what in ((2, "wall"), (4, "CPU of all ranks")):
    t = collections.defaultdict(list)
    for r in rows:
        t[(r[0], r[1])].append(float(r[col]))
    g = lambda lab, m: min(t[(lab, m)]) if t.get((lab, m)) else float("nan")
    print("%s:" % what)
    print("| method | single off | single tiered3 | %d separate runs (%d x (off + tiered3)) | sweep, 2 outputs | sweep, %d outputs | per extra output | sweep 2 / single tiered3 | sweep %d / single tiered3 | %d separate / sweep | torch grid (%d outputs, LARV off) |" % (2 * nl, nl, 2 * nl, 2 * nl, 2 * nl, nl))
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for m in sorted({m for (lab, m) in t if lab == "sweep2N"}):
        so, st, s2, sn = g("single_off", m), g("single_tiered3", m), g("sweep2", m), g("sweep2N", m)
        sep = nl * (so + st)
        per = (sn - s2) / (2 * nl - 2) if nl > 1 else float("nan")
        tg = g("torch_grid", m)
        print("| %s | %.1f s | %.1f s | %.1f s | %.1f s | %.1f s | %.2f s | %.2fx | %.2fx | %.1fx | %s |" % (
            m, so, st, sep, s2, sn, per, s2 / st, sn / st, sep / sn, "-" if tg != tg else "%.1f s" % tg))
    if t.get(("five_in_one", "all")):
        five = sum(g("five_single", m) for m in M5)
        one = g("five_in_one", "all")
        print()
        print("| five methods, tiered3 | one run | five runs | ratio |")
        print("|---|---|---|---|")
        print("| ta, ties, tsv, iso-c, iso-cts | %.1f s | %.1f s (%s) | %.2fx |" % (
            one, five, " + ".join("%.1f" % g("five_single", m) for m in M5), five / one))
    print()
print("raw runs (label, method, wall s, load before, CPU s):")
for r in rows:
    print("    " + "  ".join(r))
PY
