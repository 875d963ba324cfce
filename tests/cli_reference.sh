#!/usr/bin/env bash
# End to end against an independent reference: every method, with and without
# LARV, at 1 and 3 ranks, on a synthesized tiny pool; the output of `larv merge`
# is compared tensor by tensor with tests/reference/merge_ref.py (numpy float64,
# written apart from the C code), and so is the LARV table of the report.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
$PY -c 'import numpy' || { echo "python3-numpy is needed (bash .ci/deps.sh test installs it)"; exit 1; }
REF="$PY $LARV_SRC/tests/reference/merge_ref.py"
$LARV synth --arch tiny --tasks 3 --seed 7 --out "$work/pool" --quiet
pool=(--base "$work/pool/base.safetensors" --task "$work/pool/task01.safetensors"
      --task "$work/pool/task02.safetensors" --task "$work/pool/task03.safetensors")
run() { # name, ranks, larv merge args...; then the same args go to the reference
  local name=$1 np=$2; shift 2
  local out="$work/$name-np$np.safetensors" rep="$work/$name-np$np.json"
  if $MPIEXEC -np "$np" $LARV merge "${pool[@]}" --out "$out" --report "$rep" --quiet "$@" >"$work/log" 2>&1 \
     && $REF "${pool[@]}" --merged "$out" --report "$rep" "$@"; then
    pass=$((pass+1))
  else
    echo "FAIL: $name at $np ranks"; cat "$work/log"; fail=$((fail+1))
  fi
}
for np in 1 3; do
  for m in ta ties tsv iso-c iso-cts; do
    run "$m-off" $np --method $m --larv off
    run "$m-tiered3" $np --method $m --larv tiered3
  done
done
run ties-mean 2 --method ties --ties-merge mean --ties-k 0.3 --larv tiered2
run ties-max 2 --method ties --ties-merge max --larv continuous
run ties-k1 2 --method ties --ties-k 1 --larv off    # keep everything (k = 1)
run tsv-depth 2 --method tsv --larv depth --lambda 0.7
run iso-cts-f5 2 --method iso-cts --iso-common 0.5 --larv tiered3
run ta-exclude 2 --method ta --exclude '*fc2*' --larv tiered3
# proxies from some of the block matrices only (every matrix still scaled)
run tsv-proxy-fc1 2 --method tsv --larv tiered3 --larv-proxy '*.mlp.fc1.*'
run ta-proxy-all 2 --method ta --larv tiered3 --larv-proxy '*'   # every matrix (the default is fc1)
run iso-c-proxy-two 3 --method iso-c --larv continuous --larv-proxy '*.out_proj.*' --larv-proxy '*fc2*'
# the result does not depend on the rank count: 1, 2, 3 and 4 ranks agree to 1e-6
for m in ta ties tsv iso-c iso-cts; do
  for np in 2 4; do
    out="$work/$m-rk$np.safetensors"
    $MPIEXEC -np $np $LARV merge "${pool[@]}" --method $m --out "$out" --quiet >"$work/log" 2>&1 || cat "$work/log"
  done
  for other in "$work/$m-tiered3-np3.safetensors" "$work/$m-rk2.safetensors" "$work/$m-rk4.safetensors"; do
    if $PY "$LARV_SRC/tests/reference/compare.py" "$work/$m-tiered3-np1.safetensors" "$other" 1e-6; then
      pass=$((pass+1)); else echo "FAIL: $m differs across rank counts"; fail=$((fail+1)); fi
  done
done
# teams: 2 ranks share each matrix, its eigenproblems on a ScaLAPACK grid
# (pdsyevd) instead of LAPACK; the merge must not change beyond 1e-6
for m in tsv iso-cts; do
  out="$work/$m-team.safetensors"
  if LARV_TEAM_MIN_ORDER=16 $MPIEXEC -np 4 $LARV merge "${pool[@]}" --method $m --out "$out" \
       --ranks-per-matrix 2 --report "$work/team.json" --quiet >"$work/log" 2>&1 \
     && grep -q '"ranks_per_matrix": 2' "$work/team.json" \
     && $PY "$LARV_SRC/tests/reference/compare.py" "$work/$m-tiered3-np1.safetensors" "$out" 1e-6; then
    pass=$((pass+1)); else echo "FAIL: $m with ScaLAPACK teams"; cat "$work/log"; fail=$((fail+1)); fi
done
finish
