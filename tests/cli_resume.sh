#!/usr/bin/env bash
# larv merge --resume: a merge killed midway (SIGKILL to one rank) leaves no
# file at the target, only OUT.larv-tmp and the journals OUT.larv-tmp.journal.<r>;
# rerun with --resume, it skips the tensors already written (re-read and
# verified) and gives the same bytes as an uninterrupted run (safetensors,
# HDF5, sharded safetensors). Also: --resume with nothing to resume, a journalled
# tensor corrupted in the temporary file (rewritten), other arguments (a full
# run), an input whose bytes changed with the same size and time (a full run:
# the journalled input checksums are checked), and a rerun without --resume
# (the leftovers are replaced).
#
# Test hook: LARV_TEST_SLOW_WRITE_MS=N makes every rank sleep N ms after each
# tensor it writes, so that the kill lands midway on any machine.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
$LARV synth --arch tiny --tasks 8 --seed 7 --out "$work/pool" --quiet
pool=(--base "$work/pool/base.safetensors")
for t in 1 2 3 4 5 6 7 8; do pool+=(--task "$work/pool/task0$t.safetensors"); done
leftovers() { compgen -G "$1.larv-tmp*" || true; }

# Start a slow merge in the background, SIGKILL rank 1 once its journal holds
# 3 tensors, wait for mpirun. Args: out, larv merge options...
kill_midway() {
  local out=$1; shift
  LARV_TEST_SLOW_WRITE_MS=150 timeout 120 $MPIEXEC -np 2 $LARV merge "${pool[@]}" --out "$out" \
      --quiet "$@" >"$work/killed.log" 2>&1 &
  local mp=$! n=0 victim=""
  for _ in $(seq 600); do
    n=$(cat "$out.larv-tmp.journal.1" 2>/dev/null | wc -l)
    [ "$n" -ge 4 ] && break
    sleep 0.05
  done
  for _ in $(seq 40); do  # a loaded machine can hide the process for a moment
    for p in $(pgrep -x larv || true); do
      if grep -qa -- "$out" /proc/$p/cmdline 2>/dev/null &&
         tr '\0' '\n' </proc/$p/environ 2>/dev/null | grep -qE '^(OMPI_COMM_WORLD_RANK|PMI_RANK|PMIX_RANK)=1$'; then
        victim=$p
      fi
    done
    [ -n "$victim" ] && break
    sleep 0.1
  done
  [ -n "$victim" ] || { bad "no rank 1 to kill for $out (journal lines: $n)"; wait $mp || true; return 1; }
  kill -KILL "$victim"
  local rc=0; wait $mp || rc=$?
  if [ $rc = 0 ]; then bad "$out: mpirun exited 0 after a rank was killed"; return 1; fi
  if [ $rc = 124 ]; then bad "$out: mpirun hung after a rank was killed"; return 1; fi
  [ ! -e "$out" ] && ok || bad "$out exists after a killed run"
  # (sharded output: the shards' temporaries; the index is written only at the end)
  compgen -G "$(dirname "$out")/*.larv-tmp" >/dev/null && [ -e "$out.larv-tmp.journal.0" ] && ok ||
    bad "$out: no temporary/journal after the kill"
}

# Resume and compare with the uninterrupted run. Args: out, ref, options...
resume_and_cmp() {
  local out=$1 ref=$2; shift 2
  if ! $MPIEXEC -np 2 $LARV merge "${pool[@]}" --out "$out" --resume "$@" >"$work/resume.log" 2>&1; then
    bad "$out: resume failed"; cat "$work/resume.log"; return 1
  fi
  local n
  n=$(sed -n 's/^\[larv\] resume: skipped \([0-9]*\) of .*/\1/p' "$work/resume.log")
  if [ -n "$n" ] && [ "$n" -gt 0 ]; then ok; else bad "$out: the log does not say it skipped tensors"; cat "$work/resume.log"; fi
  echo "  $out: resumed, skipped $n tensors"
  cmp "$out" "$ref" && ok || bad "$out: resumed output differs from the uninterrupted run"
  [ -z "$(leftovers "$out")" ] && ok || bad "$out: leftovers after success: $(leftovers "$out")"
  $LARV verify "$out" >/dev/null && ok || bad "$out: larv verify fails on the resumed output"
}

# 1. safetensors, Iso-C + LARV (journalled proxies, spilled M)
ref="$work/ref-isoc.safetensors"
$MPIEXEC -np 2 $LARV merge "${pool[@]}" --method iso-c --out "$ref" --quiet >/dev/null
out="$work/isoc.safetensors"
kill_midway "$out" --method iso-c && resume_and_cmp "$out" "$ref" --method iso-c

# 2. HDF5, TIES
ref="$work/ref-ties.h5"
$MPIEXEC -np 2 $LARV merge "${pool[@]}" --method ties --out "$ref" --quiet >/dev/null
out="$work/ties.h5"
kill_midway "$out" --method ties && resume_and_cmp "$out" "$ref" --method ties

# 3. sharded safetensors, TSV-M (the index is written only at the end)
ref="$work/ref-tsv/m.safetensors.index.json"; mkdir -p "$work/ref-tsv" "$work/tsv"
$MPIEXEC -np 2 $LARV merge "${pool[@]}" --method tsv --out "$ref" --quiet >/dev/null
out="$work/tsv/m.safetensors.index.json"
if kill_midway "$out" --method tsv; then
  resume_and_cmp "$out" "$ref" --method tsv
  cmp "$work/tsv/m-00001-of-00001.safetensors" "$work/ref-tsv/m-00001-of-00001.safetensors" && ok ||
    bad "sharded: the resumed shard differs"
fi

# 4. a journalled tensor corrupted in the temporary file is rewritten
ref="$work/ref-isoc.safetensors"
out="$work/corrupt.safetensors"
if kill_midway "$out" --method iso-c; then
  # flip a byte in the data of the first tensor rank 1 journalled
  idx=$(awk '$1 == "t" {print $2; exit}' "$out.larv-tmp.journal.1")
  /usr/bin/python3 - "$out.larv-tmp" "$idx" <<'EOF'
import json, struct, sys
path, idx = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
    name = sorted(k for k in hdr if k != "__metadata__")[idx]
    off = 8 + n + hdr[name]["data_offsets"][0]
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x55]))
EOF
  resume_and_cmp "$out" "$ref" --method iso-c
  grep -q "did not verify" "$work/resume.log" && ok || bad "corrupt: the log does not say a tensor failed verification"
fi

# 5. other arguments than the killed run: nothing is reused, a full run
out="$work/other.safetensors"
ref2="$work/ref-isoc-l07.safetensors"
$MPIEXEC -np 2 $LARV merge "${pool[@]}" --method iso-c --lambda 0.7 --out "$ref2" --quiet >/dev/null
if kill_midway "$out" --method iso-c; then
  $MPIEXEC -np 2 $LARV merge "${pool[@]}" --method iso-c --lambda 0.7 --out "$out" --resume >"$work/log" 2>&1 ||
    { bad "other args: failed"; cat "$work/log"; }
  grep -q "nothing to resume" "$work/log" && ok || { bad "other args: no 'nothing to resume' note"; cat "$work/log"; }
  cmp "$out" "$ref2" && ok || bad "other args: output differs from an uninterrupted run"
  [ -z "$(leftovers "$out")" ] && ok || bad "other args: leftovers"
fi

# 6. no --resume after a kill: the leftovers are replaced, same result
out="$work/norestart.safetensors"
if kill_midway "$out" --method iso-c; then
  $MPIEXEC -np 2 $LARV merge "${pool[@]}" --method iso-c --out "$out" >"$work/log" 2>&1 || bad "no-resume rerun failed"
  grep -q "resume" "$work/log" && bad "no-resume rerun talks of resuming" || ok
  cmp "$out" "$ref" && ok || bad "no-resume rerun differs"
  [ -z "$(leftovers "$out")" ] && ok || bad "no-resume rerun: leftovers"
fi

# 8. an input whose bytes changed with the same size and modification time:
#    the journalled input checksums do not match, nothing is reused, and the
#    result is that of an uninterrupted run on the new bytes
mkdir -p "$work/pool8"; cp -p "$work"/pool/*.safetensors "$work/pool8/"
saved=("${pool[@]}")
pool=(--base "$work/pool8/base.safetensors")
for t in 1 2 3 4 5 6 7 8; do pool+=(--task "$work/pool8/task0$t.safetensors"); done
out="$work/changed.safetensors"
if kill_midway "$out" --method iso-c; then
  f="$work/pool8/task02.safetensors"; cp -p "$f" "$work/stamp"
  /usr/bin/python3 - "$f" <<'EOF'
import json, struct, sys
with open(sys.argv[1], "r+b") as f:          # flip one bit of every tensor, size unchanged
    n = struct.unpack("<Q", f.read(8))[0]; hdr = json.loads(f.read(n))
    for k, v in hdr.items():
        if k == "__metadata__" or v["data_offsets"][0] == v["data_offsets"][1]: continue
        off = 8 + n + v["data_offsets"][0]; f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x01]))
EOF
  touch -r "$work/stamp" "$f"
  $MPIEXEC -np 2 $LARV merge "${pool[@]}" --method iso-c --out "$out" --resume >"$work/log" 2>&1 ||
    { bad "changed input: failed"; cat "$work/log"; }
  grep -q "nothing to resume (.*task02.safetensors: tensor '.*' has other bytes" "$work/log" && ok ||
    { bad "changed input: no 'nothing to resume ... has other bytes' note"; cat "$work/log"; }
  $MPIEXEC -np 2 $LARV merge "${pool[@]}" --method iso-c --out "$work/ref-changed.safetensors" --quiet >/dev/null
  cmp "$out" "$work/ref-changed.safetensors" && ok || bad "changed input: output differs from an uninterrupted run"
  [ -z "$(leftovers "$out")" ] && ok || bad "changed input: leftovers"
fi
pool=("${saved[@]}")

# 7. --resume with nothing there: a normal run
out="$work/fresh.safetensors"
$MPIEXEC -np 2 $LARV merge "${pool[@]}" --method iso-c --out "$out" --resume >"$work/log" 2>&1 || bad "fresh --resume failed"
cmp "$out" "$ref" && ok || bad "fresh --resume differs"
[ -z "$(leftovers "$out")" ] && ok || bad "fresh --resume: leftovers"

finish
