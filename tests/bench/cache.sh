#!/usr/bin/env bash
# Benchmark (not part of CI): LARV's proxy cache (--larv-cache). Per method,
# the wall time of `mpirun -np R larv merge` with
#   off   --larv off
#   cold  --larv tiered3 --larv-cache FILE, FILE absent (proxies computed, FILE written)
#   warm  --larv tiered3 --larv-cache FILE, FILE made by an earlier run (here: of
#         another method, ta, so the reuse across methods is what is timed)
# and LARV's overhead over off, in wall time and in CPU time of all ranks
# (user + system, /usr/bin/time on mpirun: far less sensitive to other load on
# a shared machine than wall time). Each configuration runs --reps times, in
# rotation (off, cold, warm, off, ...) so that a change in the machine's load
# hits all three alike; the table gives the minimum (a shared machine only
# ever adds time) and the raw runs.
#
#   bash tests/bench/cache.sh [--arch vit-b-32] [--tasks 8] [--ranks 2] \
#        [--methods "ta ties tsv iso-c iso-cts"] [--configs "off cold warm"] [--reps 3] \
#        [--pools /work/pools] \
#        [--larv-bin build-perf/larv] [--results FILE] [--no-results]
#
# The pool is made once with `larv synth --seed 1` (tests/bench/pool.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
arch=vit-b-32 tasks=8 ranks=2 methods="ta ties tsv iso-c iso-cts" configs="off cold warm" reps=3
pools=/work/pools
bin="$src/build-perf/larv" results="$here/RESULTS.md" write=1
cmdline="bash tests/bench/cache.sh $*"
while [ $# -gt 0 ]; do
  case $1 in
    --arch) arch=$2; shift ;;        --tasks) tasks=$2; shift ;;
    --ranks) ranks=$2; shift ;;      --methods) methods=$2; shift ;;
    --reps) reps=$2; shift ;;        --pools) pools=$2; shift ;;
    --configs) configs=$2; shift ;;
    --larv-bin) bin=$2; shift ;;     --results) results=$2; shift ;;
    --no-results) write=0 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "cache.sh: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -x "$bin" ] || { echo "cache.sh: $bin not built" >&2; exit 1; }
. "$here/pool.sh"
bench_pool "$bin" "$pools" "$arch" "$tasks"
work=$(mktemp -d "${TMPDIR:-/tmp}/larv-bench.XXXXXX"); trap 'rm -rf "$work"' EXIT
log="$work/runs.tsv" # method config rep seconds analysis_s from_cache load cpu_s

merge() { # config method
  local cfg=$1 m=$2 a=(--larv tiered3)
  case $cfg in
    off) a=(--larv off) ;;
    cold) rm -f "$work/cold.pxc"; a+=(--larv-cache "$work/cold.pxc") ;;
    warm) a+=(--larv-cache "$work/warm.pxc") ;;
  esac
  /usr/bin/time -f "%U %S" -o "$work/cpu" mpirun -np "$ranks" --oversubscribe "$bin" merge --method "$m" "${a[@]}" "${targs[@]}" \
    --out "$work/out.safetensors" --report "$work/rep.json" --quiet >/dev/null
  rm -f "$work/out.safetensors"
}
# the warm cache: made once, by ta
merge cold ta
mv "$work/cold.pxc" "$work/warm.pxc"
for m in $methods; do
  for r in $(seq 1 "$reps"); do
    for cfg in $configs; do
      l0=$(cut -d' ' -f1 /proc/loadavg)
      t0=$(date +%s.%N); merge $cfg "$m"; t1=$(date +%s.%N)
      $PY - "$work/rep.json" "$m" "$cfg" "$r" "$t0" "$t1" "$l0" "$work/cpu" >>"$log" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
m, cfg, r, t0, t1, l0, cpu = sys.argv[2:]
pc = s.get("larv_cache", {}).get("proxies_from_cache", "-")
u, k = open(cpu).read().split()[-2:]
print(m, cfg, r, float(t1) - float(t0), s["pass_seconds"]["analysis"], pc, l0,
      float(u) + float(k), sep="\t")
EOF
      tail -1 "$log" >&2
    done
  done
done
table=$($PY - "$log" "$methods" "$configs" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
configs = sys.argv[3].split()
head = ["method"] + [f"{c} s (CPU s)" for c in configs]
head += [f"overhead {c}, wall (CPU)" for c in configs if c != "off" and "off" in configs]
head += ["analysis pass " + " / ".join(c for c in configs if c != "off") + " s"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for m in sys.argv[2].split():
    w, u, an = {}, {}, {}
    for c in configs:
        rs = [r for r in rows if r[0] == m and r[1] == c]
        if c == "warm":
            assert all(r[5] == "True" for r in rs), "a warm run computed its proxies"
        w[c] = min(float(r[3]) for r in rs)
        u[c] = min(float(r[7]) for r in rs)
        an[c] = min(float(r[4]) for r in rs)
    cells = [m] + [f"{w[c]:.1f} ({u[c]:.1f})" for c in configs]
    cells += [f"{100 * (w[c] / w['off'] - 1):+.0f}% ({100 * (u[c] / u['off'] - 1):+.0f}%)"
              for c in configs if c != "off" and "off" in configs]
    cells.append(" / ".join(f"{an[c]:.2f}" for c in configs if c != "off"))
    print("| " + " | ".join(cells) + " |")
EOF
)
echo
echo "$table"
if [ "$write" = 1 ]; then
  {
    echo
    echo "## LARV proxy cache: $arch x $tasks tasks, $ranks ranks ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "Command: \`$cmdline\`"
    echo
    echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); larv $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '?'). Minimum of $reps runs per configuration (run in rotation), wall and CPU (all ranks) each; the warm cache was made by a ta run. Load average before each run: $(cut -f7 "$log" | tr '\n' ' ')"
    echo
    echo "$table"
    echo
    echo "<details><summary>raw runs (method, config, rep, seconds, analysis pass s, proxies from cache, load, CPU s)</summary>"
    echo
    echo '```'
    cat "$log"
    echo '```'
    echo "</details>"
  } >>"$results"
  echo "appended to $results" >&2
fi
