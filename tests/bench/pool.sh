# Sourced by the benchmark scripts: the synthetic pool POOLS/ARCHxT (made once
# with `larv synth --seed 1`, outside the repository) and the merge arguments
# for it.   bench_pool BIN POOLS ARCH TASKS  ->  $pool, targs=(--base ... --task ...)
bench_pool() {
  local bin=$1 pools=$2 arch=$3 tasks=$4 t
  pool="$pools/${arch}x$tasks"
  if [ ! -f "$pool/base.safetensors" ] || [ ! -f "$pool/task$(printf %02d "$tasks").safetensors" ]; then
    echo "generating $pool" >&2
    mkdir -p "$pools"
    "$bin" synth --arch "$arch" --tasks "$tasks" --seed 1 --out "$pool" --quiet
  fi
  targs=(--base "$pool/base.safetensors")
  for t in $(seq 1 "$tasks"); do targs+=(--task "$pool/task$(printf %02d "$t").safetensors"); done
}
