#!/usr/bin/env bash
# The MPI error policy (io/coll.h), end to end: every checked MPI call of a
# 2-rank merge (TIES + LARV: the analysis, the TIES selection, the provenance),
# made to fail on one rank, ends the whole job promptly with that rank's error
# on stderr ("rank R: MPI_Xxx failed: ..."), exit 1 on every rank, and no
# output, temporary or journal left behind; never a hang (every mpirun runs
# under `timeout 120`; 124 fails the test). The call is picked by the test hook
# LARV_TEST_MPI_FAIL=NAME:RANK:N (the N-th checked call of NAME on RANK reports
# MPI_ERR_OTHER after completing); N counts up until the merge no longer
# reaches an N-th call, so a new collective is covered without editing this
# test. The real failing collectives (bad counts and roots) are in
# tests/mpi_test_coll.c.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$work"
$LARV synth --arch tiny --tasks 3 --seed 7 --out pool --quiet
pool=(--base pool/base.safetensors --task pool/task01.safetensors --task pool/task02.safetensors
      --task pool/task03.safetensors)

# Rule 1, by reading the sources: every MPI call goes through LARV_MPI /
# LARV_MPI_ALL (on its line or the line before), except the exempt local
# queries and main's start-up and shutdown.
unchecked=$(awk '
  FNR == 1 { prev = "" }
  /MPI_[A-Z][a-z_]*\(/ && !/LARV_MPI|agreement_call|MPI_SUCCESS/ && prev !~ /LARV_MPI.*[,(]$/ {
    line = $0
    gsub(/MPI_(Comm_rank|Comm_size|Wtime|Error_string|Error_class|Abort|Init_thread|Finalize)\(/, "", line)
    if (line ~ /MPI_[A-Z][a-z_]*\(/)
      printf "%s:%d: %s\n", FILENAME, FNR, $0
  }
  { prev = $0 }' "$LARV_SRC"/io/*.c "$LARV_SRC"/mpi/*.c "$LARV_SRC"/cli/*.c)
[ -z "$unchecked" ] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL unchecked MPI calls:"; echo "$unchecked"; }
clean() { [ ! -e "$1" ] && [ -z "$(compgen -G "$1.larv-tmp*" || true)" ]; }

# a reference run: it must succeed without the hook
timeout 120 $MPIEXEC -np 2 $LARV merge --quiet --method ties "${pool[@]}" --out ref.safetensors \
  >/dev/null 2>&1 && ok || bad "reference merge"

for name in MPI_Allreduce MPI_Allgather MPI_Bcast; do
  for r in 0 1; do
    covered=0
    for n in $(seq 1 40); do
      rm -f o.safetensors*
      rc=0
      LARV_TEST_MPI_FAIL=$name:$r:$n timeout 120 $MPIEXEC -np 2 $LARV merge --quiet --method ties \
        "${pool[@]}" --out o.safetensors >out.log 2>err.log || rc=$?
      if [ "$rc" = 0 ]; then
        # no N-th call: the merge ran through and matches the reference
        cmp -s o.safetensors ref.safetensors && ok || bad "$name:$r:$n: a clean run differs"
        break
      fi
      covered=$((covered+1))
      what="$name on rank $r, call $n"
      [ "$rc" = 1 ] && ok || bad "$what: exit $rc, expected 1 (124: a hang)"
      grep -q "larv merge: rank $r: $name failed: " err.log && ok ||
        { bad "$what: no 'rank $r: $name failed' on stderr"; cat err.log; }
      clean o.safetensors && ok || bad "$what: output or temporaries left"
    done
    echo "$name on rank $r: $covered checked calls made to fail"
    [ "$name" != MPI_Allreduce ] || [ "$covered" -ge 5 ] && ok ||
      bad "$name on rank $r: only $covered calls were reached (hook not working?)"
  done
done
# Rule 3: a member of a ScaLAPACK team that cannot hear its leader ends the job
# (MPI_Abort), like a kill: the temporary output and journals stay, and
# --resume then finishes the merge, equal to an undisturbed run.
team=(--quiet --method tsv "${pool[@]}" --ranks-per-matrix 2)
export LARV_TEAM_MIN_ORDER=8 # the tiny pool's matrices go to the team's grid too
timeout 120 $MPIEXEC -np 2 $LARV merge "${team[@]}" --out team-ref.safetensors >/dev/null 2>&1 &&
  ok || bad "team reference merge"
rc=0
LARV_TEST_MPI_FAIL=MPI_Bcast:1:1 timeout 120 $MPIEXEC -np 2 $LARV merge "${team[@]}" \
  --out team.safetensors >out.log 2>err.log || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] && ok || bad "team: exit $rc (124: a hang)"
grep -q "rank 1: MPI_Bcast failed: .*aborting the job" err.log && ok || { bad "team: no abort message"; cat err.log; }
[ ! -e team.safetensors ] && [ -e team.safetensors.larv-tmp ] && ok || bad "team: expected only the temporary output"
timeout 120 $MPIEXEC -np 2 $LARV merge "${team[@]}" --out team.safetensors --resume >/dev/null 2>&1 &&
  cmp -s team.safetensors team-ref.safetensors && ok || bad "team: --resume after the abort differs"
unset LARV_TEAM_MIN_ORDER
finish
