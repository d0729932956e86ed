#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for tests and for trying `plmscope slurm`:
# munged, slurmctld and slurmd on localhost, no cgroups and no accounting (what the sandbox
# offers; ../shared/design/LOCAL_SERVICES.md lists what was seen to work).
#
#   bash scripts/slurm-local.sh install  # apt-get install slurm-wlm munge, when missing (root)
#   bash scripts/slurm-local.sh start    # install if needed (apt-get, as root), configure, start
#   eval "$(bash scripts/slurm-local.sh env)"   # SLURM_CONF for sbatch, squeue, scontrol
#   bash scripts/slurm-local.sh status
#   bash scripts/slurm-local.sh stop     # ends the daemons it started, by their pid files
#
# Everything it writes (slurm.conf, state, spool, logs, pid files) lives in
# $PLMSCOPE_SLURM_DIR (default /tmp/plmscope-slurm). Job states: squeue and scontrol (sacct
# needs accounting, which is off).
set -euo pipefail

DIR="${PLMSCOPE_SLURM_DIR:-/tmp/plmscope-slurm}"
CONF="$DIR/slurm.conf"

say() { echo "slurm-local: $*" >&2; }

install_if_missing() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v munged >/dev/null && command -v sbatch >/dev/null; then
        return
    fi
    if [ "$(id -u)" != 0 ]; then
        say "slurm-wlm and munge are missing; install them as root: apt-get install slurm-wlm munge"
        exit 1
    fi
    say "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q slurm-wlm munge >"$DIR/apt.log" 2>&1 || {
        apt-get update -q >>"$DIR/apt.log" 2>&1
        apt-get install -y -q slurm-wlm munge >>"$DIR/apt.log" 2>&1
    } || { tail -20 "$DIR/apt.log" >&2; exit 1; }
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return
    fi
    [ -f /etc/munge/munge.key ] || mungekey -c -f -k /etc/munge/munge.key
    mkdir -p /etc/munge /var/log/munge /var/lib/munge /run/munge
    chown -R munge:munge /etc/munge /var/log/munge /var/lib/munge /run/munge
    chmod 0700 /etc/munge /var/log/munge /var/lib/munge
    chmod 0755 /run/munge
    chmod 0400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged
    touch "$DIR/munged.started-here"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.1
    done
    say "munged did not come up (see /var/log/munge/munged.log)"
    exit 1
}

write_conf() {
    local host mem
    host="$(hostname -s)"
    # A bit under the free memory, so slurmd's own check of RealMemory passes.
    mem=$(( $(free -m | awk '/^Mem:/ {print $7}') * 9 / 10 ))
    mkdir -p "$DIR/state" "$DIR/spool"
    cat >"$CONF" <<EOF
ClusterName=plmscope-local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=3600
NodeName=$host CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    mkdir -p "$DIR"
    install_if_missing
    start_munge
    if pid_alive "$DIR/slurmctld.pid" && pid_alive "$DIR/slurmd.pid"; then
        say "already running ($CONF)"
        return
    fi
    write_conf
    export SLURM_CONF="$CONF"
    # -c: a clean start, no jobs kept from an earlier cluster in this folder.
    pid_alive "$DIR/slurmctld.pid" || slurmctld -c -f "$CONF"
    pid_alive "$DIR/slurmd.pid" || slurmd -f "$CONF"
    for _ in $(seq 100); do
        if sinfo -h -o '%T' 2>/dev/null | grep -qx 'idle'; then
            say "up: $(sinfo -h -o '%N %c CPUs %m MB %T')"
            return
        fi
        sleep 0.2
    done
    say "the node did not become idle; sinfo says: $(sinfo -h 2>&1 || true)"
    tail -5 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 || true
    exit 1
}

stop_pidfile() {
    local file="$1" name="$2"
    if pid_alive "$file"; then
        local pid
        pid="$(cat "$file")"
        kill "$pid"
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        say "stopped $name ($pid)"
    fi
    rm -f "$file"
}

stop() {
    stop_pidfile "$DIR/slurmd.pid" slurmd
    stop_pidfile "$DIR/slurmctld.pid" slurmctld
    if [ -f "$DIR/munged.started-here" ]; then
        stop_pidfile /run/munge/munged.pid munged
        rm -f "$DIR/munged.started-here"
    fi
}

case "${1:-}" in
    install) mkdir -p "$DIR"; install_if_missing ;;
    start) start ;;
    stop) stop ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    status)
        export SLURM_CONF="$CONF"
        sinfo && squeue
        ;;
    *)
        echo "usage: $0 install|start|stop|status|env" >&2
        exit 2
        ;;
esac
