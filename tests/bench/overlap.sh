#!/usr/bin/env bash
# Read/compute overlap benchmark (not part of CI): `larv merge` with the
# read-ahead thread (default) and with --no-readahead, on a page-cached pool and
# on the same pool read at an emulated per-process bandwidth (the benchmark hook
# LARV_TEST_READ_MBPS=N makes every tensor read last at least bytes / (N MB/s),
# as a parallel file system's share per client would; the page cache of a
# workstation is too fast to show anything).
#
#   bash tests/bench/overlap.sh [--arch vit-b-32] [--tasks 8] [--ranks 2] \
#        [--methods "ta iso-c"] [--larv off] [--mbps "0 300"] [--reps 2] \
#        [--pools /work/pools] [--larv-bin build-perf/larv] [--results FILE] [--no-results]
#
# Prints a markdown table (median wall seconds of --reps runs, peak RSS per rank)
# and appends it, with the command and the machine, to tests/bench/RESULTS.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
arch=vit-b-32 tasks=8 ranks=2 methods="ta iso-c" larv=off mbps="0 300" reps=2
pools=/work/pools bin="$src/build-perf/larv" results="$here/RESULTS.md" write=1
cmdline="bash tests/bench/overlap.sh $*"
while [ $# -gt 0 ]; do
  case $1 in
    --arch) arch=$2; shift ;;       --tasks) tasks=$2; shift ;;
    --ranks) ranks=$2; shift ;;     --methods) methods=$2; shift ;;
    --larv) larv=$2; shift ;;       --mbps) mbps=$2; shift ;;
    --reps) reps=$2; shift ;;       --pools) pools=$2; shift ;;
    --larv-bin) bin=$2; shift ;;    --results) results=$2; shift ;;
    --no-results) write=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "overlap.sh: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
PY=/usr/bin/python3
[ -x "$bin" ] || { echo "overlap.sh: $bin not built (cmake -S . -B build-perf -DCMAKE_BUILD_TYPE=Release && cmake --build build-perf -j2)" >&2; exit 1; }
. "$here/pool.sh"
bench_pool "$bin" "$pools" "$arch" "$tasks"
work=$(mktemp -d "${TMPDIR:-/tmp}/larv-overlap.XXXXXX"); trap 'rm -rf "$work"' EXIT
log="$work/runs.tsv" # method mbps readahead rep seconds peak_rss_max bytes_read_ahead
for m in $methods; do
  for bw in $mbps; do
    for ra in on off; do
      flag=(); [ "$ra" = off ] && flag=(--no-readahead)
      for r in $(seq 1 "$reps"); do
        t0=$(date +%s.%N)
        mpirun -np "$ranks" --oversubscribe -x LARV_TEST_READ_MBPS="$bw" "$bin" merge --method "$m" \
          --larv "$larv" "${flag[@]}" "${targs[@]}" --out "$work/out.safetensors" \
          --report "$work/rep.json" --quiet >/dev/null
        t1=$(date +%s.%N)
        $PY - "$work/rep.json" "$m" "$bw" "$ra" "$r" "$t0" "$t1" >>"$log" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
m, bw, ra, r, t0, t1 = sys.argv[2:]
print(m, bw, ra, r, float(t1) - float(t0), max(s["peak_rss_bytes_per_rank"]), s["bytes_read_ahead"], sep="\t")
EOF
        tail -1 "$log" >&2
        rm -f "$work/out.safetensors"
      done
    done
  done
done
table=$($PY - "$log" <<'EOF'
import statistics as st, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
keys = []
for r in rows:
    if (r[0], r[1]) not in keys:
        keys.append((r[0], r[1]))
print("| method | read bandwidth per rank | read-ahead on | --no-readahead | saved | peak RSS/rank on / off |")
print("|---|---|---|---|---|---|")
for m, bw in keys:
    on = [r for r in rows if r[0] == m and r[1] == bw and r[2] == "on"]
    off = [r for r in rows if r[0] == m and r[1] == bw and r[2] == "off"]
    a = st.median(float(r[4]) for r in on)
    b = st.median(float(r[4]) for r in off)
    rss = lambda rs: max(int(r[5]) for r in rs) / 2**20
    bwl = "page cache" if float(bw) <= 0 else f"{bw} MB/s (emulated)"
    print(f"| {m} | {bwl} | {a:.1f} s | {b:.1f} s | {100 * (1 - a / b):+.0f}% | {rss(on):.0f} / {rss(off):.0f} MiB |")
EOF
)
echo
echo "$table"
if [ "$write" = 1 ]; then
  {
    echo
    echo "## Read/compute overlap: $arch x $tasks tasks, $ranks ranks, LARV $larv ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "Command: \`$cmdline\`; larv $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '?'), median of $reps runs."
    echo
    echo "$table"
  } >>"$results"
  echo "appended to $results" >&2
fi
