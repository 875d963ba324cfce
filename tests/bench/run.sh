#!/usr/bin/env bash
# larv benchmarks (not part of CI): wall time and peak memory per rank of
# `mpirun -np R larv merge` for each method with LARV off and with LARV tiered3,
# against the PyTorch CPU baseline (tests/bench/torch_baseline.py, the FusionBench
# way: all task vectors in memory, float32 torch.linalg.svd) run in the same
# session on the same cores (torch.set_num_threads = the core count given).
#
#   bash tests/bench/run.sh [--arch vit-b-32] [--tasks 8] [--ranks "2"] \
#        [--methods "ta ties tsv iso-c iso-cts"] [--larv "off tiered3"] [--reps 3] \
#        [--torch-reps 1] [--no-torch] [--threads 2] [--precision double] \
#        [--pools /work/pools] [--larv-bin build-perf/larv] [--results FILE] [--no-results]
#
# A --larv entry RULE:GLOB runs RULE with --larv-proxy GLOB (proxies from the
# matching block matrices only), e.g. --larv "off tiered3 tiered3:*.mlp.fc1.*".
#
# The pool is generated once (larv synth --seed 1) into POOLS/ARCHxT (outside the
# repository). Each larv timing is the median of --reps runs (min-max shown), each
# torch timing of --torch-reps runs. Prints a markdown table and writes it, with the
# exact command, the date and the machine, to tests/bench/RESULTS.md (--results).
# OpenBLAS threads per rank: larv picks cores / ranks itself (mpi/threads.c) unless
# OPENBLAS_NUM_THREADS is set. Root: OMPI_ALLOW_RUN_AS_ROOT* are set here.
# Timings on a shared machine are noisy: the load average before each run is logged.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
arch=vit-b-32 tasks=8 ranks="2" methods="ta ties tsv iso-c iso-cts" larvs="off tiered3"
reps=3 treps=1 torch=1 threads=$(nproc) prec=double pools=/work/pools
bin="$src/build-perf/larv" results="$here/RESULTS.md" write=1 mpiargs="--oversubscribe"
cmdline="bash tests/bench/run.sh $*"
while [ $# -gt 0 ]; do
  case $1 in
    --arch) arch=$2; shift ;;            --tasks) tasks=$2; shift ;;
    --ranks) ranks=$2; shift ;;          --methods) methods=$2; shift ;;
    --larv) larvs=$2; shift ;;           --reps) reps=$2; shift ;;
    --torch-reps) treps=$2; shift ;;     --no-torch) torch=0 ;;
    --threads) threads=$2; shift ;;      --precision) prec=$2; shift ;;
    --pools) pools=$2; shift ;;          --larv-bin) bin=$2; shift ;;
    --results) results=$2; shift ;;      --no-results) write=0 ;;
    --mpirun-args) mpiargs=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
set -f # --larv entries may hold globs: no pathname expansion below
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -x "$bin" ] || { echo "run.sh: $bin not built (cmake -S . -B build-perf -DCMAKE_BUILD_TYPE=Release && cmake --build build-perf -j2)" >&2; exit 1; }
. "$here/pool.sh"
bench_pool "$bin" "$pools" "$arch" "$tasks"
work=$(mktemp -d "${TMPDIR:-/tmp}/larv-bench.XXXXXX"); trap 'rm -rf "$work"' EXIT
log="$work/runs.tsv"   # kind method larv ranks rep seconds peak_rss_max peak_rss_sum load

load() { cut -d' ' -f1 /proc/loadavg; }
for m in $methods; do
  for np in $ranks; do
    for lv in $larvs; do
      rule=${lv%%:*} extra=()
      [ "$rule" = "$lv" ] || extra=(--larv-proxy "${lv#*:}")
      for r in $(seq 1 "$reps"); do
        l0=$(load); t0=$(date +%s.%N)
        mpirun -np "$np" $mpiargs "$bin" merge --method "$m" --larv "$rule" "${extra[@]}" --precision "$prec" \
          "${targs[@]}" --out "$work/out.safetensors" --report "$work/rep.json" --quiet >/dev/null
        t1=$(date +%s.%N)
        $PY - "$work/rep.json" "$m" "$lv" "$np" "$r" "$t0" "$t1" "$l0" >>"$log" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["summary"]
p = r["peak_rss_bytes_per_rank"]
m, lv, np_, rep, t0, t1, l0 = sys.argv[2:]
print("larv", m, lv, np_, rep, float(t1) - float(t0), max(p), sum(p), l0, sep="\t")
EOF
        tail -1 "$log" >&2
        rm -f "$work/out.safetensors"
      done
    done
  done
  if [ "$torch" = 1 ]; then
    for r in $(seq 1 "$treps"); do
      l0=$(load)
      j=$($PY "$here/torch_baseline.py" --method "$m" --pool "$pool" --tasks "$tasks" \
            --out "$work/torch.safetensors" --threads "$threads" | tail -1)
      $PY - "$j" "$m" "$r" "$l0" "$threads" >>"$log" <<'EOF'
import json, sys
j = json.loads(sys.argv[1])
print("torch", sys.argv[2], "-", sys.argv[5], sys.argv[3], j["total_s"], j["peak_rss_bytes"],
      j["peak_rss_bytes"], sys.argv[4], sep="\t")
EOF
      tail -1 "$log" >&2
      rm -f "$work/torch.safetensors"
    done
  fi
done

table=$($PY - "$log" "$methods" "$ranks" "$larvs" <<'EOF'
import statistics as st, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
methods, ranks, larvs = sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
def pick(kind, m, lv=None, np_=None):
    return [r for r in rows if r[0] == kind and r[1] == m and (lv is None or r[2] == lv)
            and (np_ is None or r[3] == np_)]
def fmt(rs):
    if not rs:
        return "-", None
    s = sorted(float(r[5]) for r in rs)
    med = st.median(s)
    spread = f" ({s[0]:.1f}-{s[-1]:.1f})" if len(s) > 1 else ""
    return f"{med:.1f}{spread}", med
def mib(rs, col):
    return f"{max(int(r[col]) for r in rs) / 2**20:.0f}" if rs else "-"
lab = lambda lv: f"`{lv}`" if ":" in lv else lv  # globs in markdown
head = ["method", "ranks"]
for lv in larvs:
    head += [f"larv {lab(lv)} s", f"peak RSS/rank {lab(lv)} MiB"]
others = [lv for lv in larvs if lv != "off"] if "off" in larvs else []
head += [f"LARV overhead ({lab(lv)})" for lv in others]
head += ["torch s", "torch peak MiB"] + [f"speedup vs torch ({lab(lv)})" for lv in larvs]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for m in methods:
    tr = pick("torch", m)
    ts, tmed = fmt(tr)
    for np_ in ranks:
        cells, meds = [m, np_], {}
        for lv in larvs:
            rs = pick("larv", m, lv, np_)
            s, meds[lv] = fmt(rs)
            cells += [s, mib(rs, 6)]
        for other in others:
            if meds["off"] and meds[other]:
                cells.append(f"{100 * (meds[other] / meds['off'] - 1):+.0f}%")
            else:
                cells.append("-")
        cells += [ts, mib(tr, 6)]
        for lv in larvs:
            cells.append(f"{tmed / meds[lv]:.1f}x" if tmed and meds[lv] else "-")
        print("| " + " | ".join(cells) + " |")
EOF
)
echo
echo "$table"
if [ "$write" = 1 ]; then
  {
    echo
    echo "## $arch x $tasks tasks, ranks: $ranks, precision $prec ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "Command: \`$cmdline\`"
    echo
    echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(mpirun --version 2>/dev/null | head -1); OpenBLAS $(basename "$(readlink -f /usr/lib/x86_64-linux-gnu/libopenblas.so.0)"); torch $($PY -c 'import torch; print(torch.__version__)') with $threads threads; larv $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '?')."
    echo "larv: median of $reps runs (min-max); torch: median of $treps run(s). Peak RSS per rank: the largest rank's (larv --report), torch: the process's. Load average before each run: $(cut -f9 "$log" | tr '\n' ' ')"
    echo
    echo "$table"
    echo
    echo "<details><summary>raw runs (kind, method, larv, ranks, rep, seconds, peak RSS max, peak RSS sum, load)</summary>"
    echo
    echo '```'
    cat "$log"
    echo '```'
    echo "</details>"
  } >>"$results"
  echo "appended to $results" >&2
fi
