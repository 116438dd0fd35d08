#!/usr/bin/env bash
# Stop the one-node SLURM cluster that .ci/slurm/start.sh started: exactly the daemons recorded in
# $SLURM_CI_ROOT/started (name, pid, process start time), newest first; a recorded pid that now
# belongs to another process is left alone. Jobs still in the queue are cancelled first so that no
# job processes outlive slurmd. Data, logs and /etc/slurm/*.conf are kept (start.sh reuses them).
set -euo pipefail

ROOT=${SLURM_CI_ROOT:-/var/lib/workbench-slurm}
STATE=$ROOT/started

log() { echo "slurm-ci: $*" >&2; }

if [ ! -s "$STATE" ]; then
    log "nothing to stop (no $STATE)"
    exit 0
fi
exec 9>"$ROOT/lock"
flock -w 120 9 || { log "FAILED: another start.sh/stop.sh holds $ROOT/lock"; exit 1; }

proc_start() { sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | awk '$1 != "Z" {print $20}'; }  # a zombie counts as gone
is_ours() { [ "$(proc_start "$2")" = "$3" ]; }   # is_ours NAME PID START

# cancel the cluster's jobs while slurmctld/slurmd still run, so their processes are killed by slurm
if grep -q "^slurmctld " "$STATE" && is_ours $(grep "^slurmctld " "$STATE" | tail -n 1); then
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null || true)
    if [ -n "$jobs" ]; then
        log "cancelling jobs: $(echo $jobs)"
        timeout 10 scancel $jobs 2>/dev/null || true
        for _ in $(seq 40); do   # KillWait=5 s, then SIGKILL
            [ -z "$(timeout 5 squeue -h -o %A 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi

failed=0
tac "$STATE" | while read -r name pid start; do
    [ -n "$name" ] || continue
    if ! is_ours "$name" "$pid" "$start"; then
        log "$name (pid $pid): not running"
        continue
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do          # up to 20 s
        is_ours "$name" "$pid" "$start" || break
        sleep 0.2
    done
    if is_ours "$name" "$pid" "$start"; then
        log "$name (pid $pid): no exit after SIGTERM, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    log "$name (pid $pid): stopped"
done || failed=1
rm -f "$STATE"
exit $failed
