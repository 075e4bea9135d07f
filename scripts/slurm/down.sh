#!/usr/bin/env bash
# make slurm-down: cancel the jobs left on the local test cluster, then stop every daemon by the
# PID it recorded (slurmd, slurmctld, slurmdbd, MariaDB, munged), waiting for each to exit.
set -euo pipefail
source "$(dirname "$0")/common.sh"
quiet=${1:-}

if [[ -z $(alive_pid slurmctld) ]] || ! scontrol ping >/dev/null 2>&1; then
    :
elif jobs=$(squeue -h -o %A 2>/dev/null) && [[ -n $jobs ]]; then
    say "cancelling jobs left running: $(echo $jobs)"
    scancel $jobs || true
    for ((i = 0; i < 150; i++)); do
        [[ -z $(squeue -h -o %A 2>/dev/null) ]] && break
        sleep 0.2
    done
fi

stopped=()
for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    daemon=${DAEMONS[i]}
    pid=$(alive_pid "$daemon") || continue
    kill -TERM "$pid"
    for ((t = 0; t < 150; t++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$daemon (pid $pid) ignored SIGTERM for 30 s: killing it" >&2
        kill -KILL "$pid"
    fi
    stopped+=("$daemon")
done
if [[ -z $quiet ]]; then
    if ((${#stopped[@]})); then say "stopped ${stopped[*]}"; else say "already down"; fi
fi
