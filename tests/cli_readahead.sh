#!/usr/bin/env bash
# Read-ahead (io/readahead.h) changes when tensors are read, never what is
# merged: every method, with LARV, at 1 and 3 ranks, writes the same bytes with
# and without --no-readahead (and with the job key readahead: false), for
# safetensors and sharded inputs, also when reads are slow (LARV_TEST_READ_MBPS);
# the report says how much was read ahead (all of it for the SVD mergers, none
# with --no-readahead or HDF5 inputs); a read that fails on the helper thread
# (a task file truncated after the pool check) is reported naming file and tensor.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$work"
$LARV synth --arch tiny --tasks 3 --seed 5 --out pool --quiet
tasks=(--task pool/task01.safetensors --task pool/task02.safetensors --task pool/task03.safetensors)
summary() { /usr/bin/python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['summary']; print(s['bytes_read'], s['bytes_read_ahead'])" "$1"; }

for m in ta ties tsv iso-c iso-cts; do
  for np in 1 3; do
    check $MPIEXEC -np $np $LARV merge --method $m --base pool/base.safetensors "${tasks[@]}" \
      --out on.safetensors --report on.json --quiet >/dev/null
    check $MPIEXEC -np $np $LARV merge --method $m --base pool/base.safetensors "${tasks[@]}" \
      --out off.safetensors --report off.json --no-readahead --quiet >/dev/null
    check cmp -s on.safetensors off.safetensors
    read -r br bra < <(summary on.json)
    check test "$bra" -gt 0
    case $m in ta|tsv|iso-c|iso-cts) check test "$bra" = "$br" ;; esac # every read ahead
    read -r br0 bra0 < <(summary off.json)
    check test "$bra0" = 0 -a "$br0" = "$br"
  done
done

# slow reads (the thread is behind the caller, then ahead of it): same bytes
check $MPIEXEC -np 2 -x LARV_TEST_READ_MBPS=4 $LARV merge --method iso-c --base pool/base.safetensors \
  "${tasks[@]}" --out slow.safetensors --quiet >/dev/null
check $MPIEXEC -np 2 $LARV merge --method iso-c --base pool/base.safetensors "${tasks[@]}" \
  --out fast.safetensors --no-readahead --quiet >/dev/null
check cmp -s slow.safetensors fast.safetensors

# sharded inputs are read ahead too; the job-file key turns it off
mkdir -p shard h5
check $LARV convert pool/task02.safetensors shard/task02.safetensors.index.json --shard-size 200K
cat >job.yaml <<'YAML'
method: tsv
base: pool/base.safetensors
tasks: [pool/task01.safetensors, shard/task02.safetensors.index.json, pool/task03.safetensors]
out: job.safetensors
report: job.json
readahead: false
YAML
check $MPIEXEC -np 2 $LARV merge --job job.yaml --quiet >/dev/null
read -r br bra < <(summary job.json)
check test "$bra" = 0
# without the key: read ahead, the same bytes
sed '/^readahead:/d' job.yaml >job2.yaml
check $MPIEXEC -np 2 $LARV merge --job job2.yaml --out job-ra.safetensors --report job-ra.json --quiet >/dev/null
read -r br bra < <(summary job-ra.json)
check test "$bra" = "$br"
check cmp -s job.safetensors job-ra.safetensors

# HDF5 inputs: read by the caller (parallel HDF5 is not thread-safe)
check $LARV convert pool/task01.safetensors h5/task01.h5
check $MPIEXEC -np 2 $LARV merge --method iso-c --base pool/base.safetensors --task h5/task01.h5 \
  --task pool/task02.safetensors --out h5.safetensors --report h5.json --quiet >/dev/null
read -r br bra < <(summary h5.json)
check test "$bra" = 0 -a "$br" -gt 0

# a failed read on the helper thread: the merge fails naming the file and the
# tensor, and leaves nothing behind (the file shrinks after the pool is checked,
# while the merge reads at 1 MB/s)
cp pool/task03.safetensors broken.safetensors
set +e
LARV_TEST_READ_MBPS=1 $LARV merge --method iso-c --base pool/base.safetensors \
  --task pool/task01.safetensors --task broken.safetensors --out bad.safetensors --quiet \
  >/dev/null 2>err.txt &
pid=$!
# the temporary output appears once the inputs are open and checked
for _ in $(seq 300); do [ -e bad.safetensors.larv-tmp ] && break; sleep 0.1; done
truncate -s 4096 broken.safetensors
wait $pid
code=$?
set -e
check test "$code" -ne 0
check grep -q "broken.safetensors" err.txt
check grep -q "tensor '" err.txt
check test ! -e bad.safetensors
check sh -c "! ls bad.safetensors.larv-tmp* 2>/dev/null"
finish
