# Shared by up.sh and down.sh: where the local test cluster lives and the ports it uses.
# Everything (config, state, logs, PID files, the MariaDB data) is under $SLURM_DIR, an ignored
# folder of the project; the ports are not SLURM's defaults so a site's own daemons are left be.
SLURM_DIR=${STSANET_SLURM_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.slurm}
CTLD_PORT=${STSANET_SLURM_CTLD_PORT:-16817}
SLURMD_PORT=${STSANET_SLURM_SLURMD_PORT:-16818}
DBD_PORT=${STSANET_SLURM_DBD_PORT:-16819}
MYSQL_PORT=${STSANET_SLURM_MYSQL_PORT:-16306}
export SLURM_CONF=$SLURM_DIR/etc/slurm.conf
# daemon name -> its PID file, in start order
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)
declare -A PID_FILE=(
    [munged]=$SLURM_DIR/munge/munged.pid
    [mariadbd]=$SLURM_DIR/run/mariadbd.pid
    [slurmdbd]=$SLURM_DIR/run/slurmdbd.pid
    [slurmctld]=$SLURM_DIR/run/slurmctld.pid
    [slurmd]=$SLURM_DIR/run/slurmd.pid
)

say() { echo "slurm: $*"; }

# the PID recorded for daemon $1 when that process is alive, else nothing
alive_pid() {
    local file=${PID_FILE[$1]} pid
    [[ -s $file ]] || return 1
    pid=$(tr -dc 0-9 < "$file")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# wait_for SECONDS WHAT COMMAND...: poll COMMAND every 0.2 s until it succeeds
wait_for() {
    local seconds=$1 what=$2 i
    shift 2
    for ((i = 0; i < seconds * 5; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    say "$what did not come up within ${seconds}s; see $SLURM_DIR/log and $SLURM_DIR/munge" >&2
    return 1
}
