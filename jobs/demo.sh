#!/usr/bin/env bash
# The main job, on the embedded default (no downloads): installs what is
# missing, builds larv, synthesizes a CLIP ViT-B/32 pool of 8 fine-tuned tasks
# (once, into build/demo/pool), and merges it with Iso-C + LARV (tiered3) on
# 2 MPI ranks. Prints the LARV layer table and a summary; writes
# build/demo/merged.h5 and build/demo/merged.json.
#   LARV_RANKS=4 bash jobs/demo.sh     to use more ranks
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
np=${LARV_RANKS:-2}
pool=build/demo/pool
if [ ! -f "$pool/task08.safetensors" ]; then
  mpirun --oversubscribe -np "$np" build/larv synth --arch vit-b-32 --tasks 8 --seed 1 --out "$pool"
fi
mpirun --oversubscribe -np "$np" build/larv merge --job jobs/demo.yaml
build/larv verify build/demo/merged.h5
