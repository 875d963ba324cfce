#!/usr/bin/env bash
# The main job, on the embedded default (no downloads): installs what is
# missing, builds larv, synthesizes a CLIP ViT-B/32 pool of 8 fine-tuned tasks
# (once, into pools/vit-b-32-x8), and merges it with Iso-C + LARV (tiered3) on
# 2 MPI ranks (jobs/vit-b-32-x8-iso-c.yaml). Prints the LARV layer table and a
# summary, writes pools/vit-b-32-x8-iso-c.h5 and .json, then verifies the file.
#   LARV_RANKS=4 bash jobs/demo.sh     to use more ranks
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
np=${LARV_RANKS:-2}
pool=pools/vit-b-32-x8
if [ ! -f "$pool/task08.safetensors" ]; then
  mpirun --oversubscribe -np "$np" build/larv synth --arch vit-b-32 --tasks 8 --seed 1 --out "$pool"
fi
mpirun --oversubscribe -np "$np" build/larv merge --job jobs/vit-b-32-x8-iso-c.yaml
build/larv verify pools/vit-b-32-x8-iso-c.h5
