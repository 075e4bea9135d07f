#!/usr/bin/env bash
# make slurm-up: a single-node SLURM cluster on localhost (munged, MariaDB, slurmdbd, slurmctld,
# slurmd) from Debian's packages, as root, without systemd or cgroups. Idempotent: a cluster
# that is already up is left as it is.
set -euo pipefail
source "$(dirname "$0")/common.sh"
here=$(cd "$(dirname "$0")" && pwd)

if [[ $(id -u) != 0 ]]; then
    say "needs root (the daemons run as root, munged as user munge)" >&2
    exit 2
fi
for tool in munged mungekey mariadbd mariadb-install-db slurmdbd slurmctld slurmd sbatch sacct; do
    if ! command -v "$tool" >/dev/null; then
        say "$tool not found: run 'make slurm-install' first (apt-get, needs root)" >&2
        exit 2
    fi
done

# the node answers: idle, mixed, allocated or completing (not down, drained or unknown)
node_up() { [[ $(sinfo -h -N -o %T 2>/dev/null) =~ ^(idle|mixed|allocated|completing) ]]; }
up=1
for daemon in "${DAEMONS[@]}"; do alive_pid "$daemon" >/dev/null || up=0; done
if ((up)) && node_up; then
    say "already up (SLURM_CONF=$SLURM_CONF)"
    exit 0
fi
# a cluster half up (a daemon died): stop what is left and start every daemon again
"$here/down.sh" --quiet

started=$(date +%s.%N)
host=$(hostname -s)
mkdir -p "$SLURM_DIR"/{etc,state,spool,run,log,munge}
cpus=${STSANET_SLURM_CPUS:-$(nproc)}
memory_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
render() {
    sed -e "s|@DIR@|$SLURM_DIR|g" -e "s|@HOST@|$host|g" -e "s|@CTLD_PORT@|$CTLD_PORT|g" \
        -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" -e "s|@DBD_PORT@|$DBD_PORT|g" \
        -e "s|@MYSQL_PORT@|$MYSQL_PORT|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEMORY_MB@|$memory_mb|g" \
        "$here/$1.in" > "$SLURM_DIR/etc/$1"
}
render slurm.conf
render slurmdbd.conf
chmod 600 "$SLURM_DIR/etc/slurmdbd.conf"  # slurmdbd refuses a config others can read

# munged refuses to run as root: its folder, key and socket belong to user munge
chown munge:munge "$SLURM_DIR/munge"
chmod 711 "$SLURM_DIR/munge"  # clients reach the socket: execute for all
if [[ ! -s $SLURM_DIR/munge/munge.key ]]; then
    runuser -u munge -- mungekey --create --keyfile="$SLURM_DIR/munge/munge.key"
fi
runuser -u munge -- munged --socket="$SLURM_DIR/munge/munge.socket" \
    --key-file="$SLURM_DIR/munge/munge.key" --pid-file="${PID_FILE[munged]}" \
    --log-file="$SLURM_DIR/munge/munged.log" --seed-file="$SLURM_DIR/munge/munged.seed"
wait_for 10 munged test -S "$SLURM_DIR/munge/munge.socket"

# MariaDB for slurmdbd, on 127.0.0.1 only, root without a password (a throwaway local database)
if [[ ! -d $SLURM_DIR/mysql/mysql ]]; then
    mariadb-install-db --no-defaults --datadir="$SLURM_DIR/mysql" --user=root \
        --auth-root-authentication-method=normal --skip-test-db \
        > "$SLURM_DIR/log/mariadb-install.log" 2>&1
fi
setsid mariadbd --no-defaults --user=root --datadir="$SLURM_DIR/mysql" \
    --socket="$SLURM_DIR/run/mariadbd.socket" --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
    --pid-file="${PID_FILE[mariadbd]}" --log-error="$SLURM_DIR/log/mariadbd.log" \
    --skip-log-bin --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 < /dev/null > /dev/null 2>&1 &
wait_for 30 mariadbd mariadb-admin --no-defaults --socket="$SLURM_DIR/run/mariadbd.socket" ping

slurmdbd  # reads slurmdbd.conf beside $SLURM_CONF
wait_for 30 slurmdbd bash -c "exec 3<>/dev/tcp/127.0.0.1/$DBD_PORT"
slurmctld -f "$SLURM_CONF"
wait_for 30 slurmctld scontrol ping
slurmd -f "$SLURM_CONF" -N "$host"
wait_for 30 "slurmd (its node up)" node_up
# accounting must know the cluster before jobs start, or sacct shows nothing for them
wait_for 30 "the cluster's accounting" bash -c "sacctmgr -n -P list cluster format=cluster | grep -qx stsanet"

say "up in $(awk "BEGIN {printf \"%.1f\", $(date +%s.%N) - $started}") s: $cpus CPUs, ${memory_mb} MB; export SLURM_CONF=$SLURM_CONF"
