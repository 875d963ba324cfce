#!/usr/bin/env bash
# Installs the Debian packages larv needs (only those missing), then configures
# and builds larv in build/ (Release). Used by jobs/demo.sh and tests/run_all.sh.
#   bash .ci/deps.sh          build dependencies
#   bash .ci/deps.sh test     also what the test suite uses (clang for libFuzzer, valgrind,
#                             Slurm and munge for tests/cli_slurm.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools
      libscalapack-openmpi-dev libopenblas-dev liblapacke-dev libjansson-dev libyaml-dev)
if [ "${1:-}" = test ]; then pkgs+=(clang libclang-rt-dev valgrind python3-numpy python3-h5py slurmctld slurmd slurm-client munge); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[deps] installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
