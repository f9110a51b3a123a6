#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the SLURM executor's integration test and for trying
# `convlab sweep --executor slurm` on a laptop.
#
#   scripts/slurm_cluster.sh install        # Debian/Ubuntu: apt-get install slurm-wlm munge (needs root)
#   scripts/slurm_cluster.sh start DIR      # munged + slurmctld + slurmd, all state and logs under DIR
#   export SLURM_CONF=DIR/slurm.conf        # what `start` prints; sbatch, squeue and submitit read it
#   scripts/slurm_cluster.sh stop DIR       # stops the three daemons by the PIDs recorded in DIR
#
# The configuration is generated for this host: its hostname, its core count and memory, one partition
# `debug`, no cgroups (proctrack/pgid, task/none), no accounting database. Nothing is written outside DIR
# (munged gets its own key and socket there), so it does not touch a system SLURM if one exists.
set -euo pipefail

die() { echo "slurm_cluster: $*" >&2; exit 1; }
sbin() { command -v "$1" || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || die "$1 not found (run: $0 install)"; }

install() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null && [ -x /usr/sbin/slurmd ] && return 0
    [ "$(id -u)" = 0 ] || die "installing needs root (apt-get install slurm-wlm munge)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
}

start() {
    local dir host cpus mem_mb user
    dir=$(mkdir -p "$1" && cd "$1" && pwd)
    host=$(hostname -s)
    cpus=$(nproc)
    mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
    user=$(id -un)
    mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/munge"
    chmod 700 "$dir/munge"
    # munge: a fresh key and a private socket
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 600 "$dir/munge/munge.key"
    "$(sbin munged)" --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed"
    cat > "$dir/slurm.conf" <<CONF
ClusterName=convlab
SlurmctldHost=$host
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
SlurmctldPort=${SLURMCTLD_PORT:-16817}
SlurmdPort=${SLURMD_PORT:-16818}
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=3600
MaxArraySize=10001
DefMemPerCPU=$(( mem_mb / cpus ))
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF="$dir/slurm.conf"
    "$(sbin slurmctld)" -i -f "$SLURM_CONF"
    "$(sbin slurmd)" -f "$SLURM_CONF"
    for _ in $(seq 60); do
        if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "SLURM is up: export SLURM_CONF=$SLURM_CONF"
            return 0
        fi
        sleep 1
    done
    tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    stop "$dir"
    die "the node did not come up within 60 s (logs above)"
}

stop() {
    local dir=$1 pidfile pid
    for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        fi
        rm -f "$pidfile"
    done
}

case "${1:-}" in
    install) install ;;
    start) [ $# -eq 2 ] || die "usage: $0 start DIR"; install; start "$2" ;;
    stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
    *) die "usage: $0 install | start DIR | stop DIR" ;;
esac
