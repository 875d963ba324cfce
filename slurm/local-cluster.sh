#!/usr/bin/env bash
# A one-node Slurm on this machine, to try the sbatch scripts before a cluster
# (and for tests/cli_slurm.sh). Debian 12: apt-get install slurmctld slurmd
# slurm-client munge (22.05). Run it as root (slurmd launches the job steps).
#
#   slurm/local-cluster.sh up      start munged, slurmctld and slurmd (idempotent)
#   slurm/local-cluster.sh down    cancel every job, stop the daemons, wait until
#                                  none is left (idempotent)
#   slurm/local-cluster.sh env     print the line that points the Slurm commands at it:
#                                  eval "$(slurm/local-cluster.sh env)"; sinfo; sbatch ...
#   slurm/local-cluster.sh status  exit 0 when all three daemons are running
#
# Everything lives under LARV_SLURM_DIR (default /tmp/larv-slurm): munge key and
# socket, slurm.conf, state, spool, logs and pid files. Nothing under /etc is
# written, and a system munged or Slurm, if any, is left alone: this cluster uses
# its own munge socket and the ports LARV_SLURM_PORT (slurmctld, default 6917) and
# LARV_SLURM_PORT + 1 (slurmd). The node's CPUs and memory come from `slurmd -C`.
# One partition, `debug` (default, no time limit of its own); MpiDefault=pmix,
# the plugin that launches Debian's Open MPI (check a site's with `srun --mpi=list`).
# KillWait is 10 s (a time limit sends SIGTERM, then SIGKILL 10 s later); finished
# jobs stay in `scontrol show job` for MinJobAge=600 s, and jobcomp/filetxt logs
# each finished job (id, state, nodes) to $LARV_SLURM_DIR/log/jobcomp.log, as no
# accounting database (sacct) runs here.
set -euo pipefail
D=${LARV_SLURM_DIR:-/tmp/larv-slurm}
PORT=${LARV_SLURM_PORT:-6917}
CONF=$D/slurm.conf
SOCK=$D/munge/munge.socket
export SLURM_CONF=$CONF

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_conf() {
  local node hw
  node=$(hostname -s)
  hw=$(slurmd -C | head -1 | sed -e "s/^NodeName=[^ ]*//")
  cat >"$CONF.new" <<EOF
# written by slurm/local-cluster.sh; rewritten on every 'up'
ClusterName=larv-local
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCK
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
MpiDefault=pmix
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$D/log/jobcomp.log
ReturnToService=2
KillWait=10
MinJobAge=600
InactiveLimit=0
SlurmdTimeout=120
NodeName=$node NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.new" "$CONF"
}

up() {
  [ "$(id -u)" = 0 ] || { echo "local-cluster.sh: run as root (slurmd starts job steps as their users)" >&2; exit 77; }
  for b in munged slurmctld slurmd sinfo; do
    command -v $b >/dev/null || [ -x /usr/sbin/$b ] || {
      echo "local-cluster.sh: $b not found: apt-get install slurmctld slurmd slurm-client munge" >&2; exit 69; }
  done
  export PATH=$PATH:/usr/sbin
  mkdir -p "$D"/{munge,state,spool,run,log}
  chmod 700 "$D/munge"
  if [ ! -s "$D/munge/munge.key" ]; then
    dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$D/munge/munge.key"
  fi
  if ! alive "$D/run/munged.pid"; then
    munged --force --socket="$SOCK" --key-file="$D/munge/munge.key" --pid-file="$D/run/munged.pid" \
           --log-file="$D/log/munged.log" --seed-file="$D/munge/munged.seed"
  fi
  if ! alive "$D/run/slurmctld.pid" || ! alive "$D/run/slurmd.pid"; then
    write_conf
  fi
  alive "$D/run/slurmctld.pid" || slurmctld -f "$CONF"
  alive "$D/run/slurmd.pid" || slurmd -f "$CONF" -N "$(hostname -s)"
  # ready: the node is idle (or busy with jobs of an earlier 'up'); bounded wait
  local state=""
  for _ in $(seq 120); do
    state=$(sinfo -h -N -o %t 2>/dev/null | head -1 || true)
    case $state in idle|mix|alloc|comp) break ;; esac
    sleep 1
  done
  case $state in
    idle|mix|alloc|comp) ;;
    *) echo "local-cluster.sh: the node did not come up (state '${state:-no answer}'); logs in $D/log" >&2
       exit 1 ;;
  esac
  echo "local Slurm up: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %t'); config $CONF" >&2
  echo "  eval \"\$($0 env)\"   # then sinfo, sbatch, squeue, scontrol" >&2
}

stop_pid() { # pidfile: TERM, bounded wait, then KILL
  local f=$1 p
  [ -s "$f" ] || return 0
  p=$(cat "$f")
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$f"
}

down() {
  export PATH=$PATH:/usr/sbin
  if alive "$D/run/slurmctld.pid"; then
    for j in $(squeue -h -o %i 2>/dev/null); do scancel --quiet "$j" 2>/dev/null || true; done
    for _ in $(seq 30); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 1; done
  fi
  stop_pid "$D/run/slurmd.pid"
  stop_pid "$D/run/slurmctld.pid"
  # job steps of this cluster that outlived slurmd (slurmstepd carries our SLURM_CONF)
  for p in $(pgrep -x slurmstepd 2>/dev/null || true); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "SLURM_CONF=$CONF"; then
      echo "$p" >"$D/run/stepd.pid"; stop_pid "$D/run/stepd.pid"
    fi
  done
  stop_pid "$D/run/munged.pid"
  rm -f "$SOCK" "$SOCK.lock"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  status) alive "$D/run/munged.pid" && alive "$D/run/slurmctld.pid" && alive "$D/run/slurmd.pid" ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64 ;;
esac
