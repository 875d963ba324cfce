#!/usr/bin/env bash
# Accuracy regression on the real tiny pool (../shared/pools/tiny-real-8, beside
# the repository): the numpy forward pass against the pool's reference logits,
# the base model's accuracy against its manifest, and a few merges at one rank
# within 0.5 points of tests/quality/recorded.json (tests/quality/regress.py).
# Skipped, with a message, when the pool is absent.
set -euo pipefail
: "${LARV:?} ${LARV_SRC:?} ${MPIEXEC:?}"
PY=/usr/bin/python3
pool="$LARV_SRC/../shared/pools/tiny-real-8"
if [ ! -f "$pool/manifest.json" ]; then
  echo "SKIP: no task pool at $pool (the accuracy regression needs it)"
  echo "0 passed, 0 failed"
  exit 0
fi
$PY -c 'import numpy, h5py' || { echo "python3-numpy and python3-h5py are needed (bash .ci/deps.sh test installs them)"; exit 1; }
export OPENBLAS_NUM_THREADS=1
# shellcheck disable=SC2086
exec $PY "$LARV_SRC/tests/quality/regress.py" "$pool" $MPIEXEC -np 1 "$LARV"
