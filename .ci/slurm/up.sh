#!/usr/bin/env bash
# Start a one-node SLURM (munge, mariadb, slurmdbd, slurmctld, slurmd) on localhost for CI.
# Two fake GPUs (symlinks to /dev/null) on partition `gpu`; `cpu` is the default partition.
# Daemon PIDs go to $STATE/pids; down.sh stops exactly those.
set -euo pipefail
STATE=${SLURM_CI_STATE:-/tmp/mdseg-slurm}
HERE=$(cd "$(dirname "$0")" && pwd)
if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq munge slurmctld slurmd slurm-client slurmdbd mariadb-server >/dev/null
fi
mkdir -p "$STATE"/{ctld,d,db,gpu} /etc/slurm /run/munge /var/log/munge
: > "$STATE/pids"
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
sed -e "s|@HOST@|$HOST|g" -e "s|@CPUS@|$CPUS|g" -e "s|@MEM@|$MEM|g" -e "s|@STATE@|$STATE|g" \
  "$HERE/slurm.conf.in" > /etc/slurm/slurm.conf
ln -sf /dev/null "$STATE/gpu/nvidia0"
ln -sf /dev/null "$STATE/gpu/nvidia1"
cat > /etc/slurm/gres.conf <<GRES
AutoDetect=off
Name=gpu File=$STATE/gpu/nvidia[0-1]
GRES
cat > /etc/slurm/slurmdbd.conf <<DBD
AuthType=auth/munge
DbdHost=$HOST
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StorageUser=root
StorageLoc=slurm_acct_db
StoragePort=3306
DBD
chmod 600 /etc/slurm/slurmdbd.conf

wait_for() {  # wait_for <seconds> <command...>
  local t=$1; shift
  for _ in $(seq "$t"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "timed out waiting for: $*" >&2; return 1
}

# munge
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile /etc/munge/munge.key
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
su -s /bin/sh munge -c "munged --pid-file=/run/munge/ci.pid"
wait_for 10 test -s /run/munge/ci.pid
echo "munged $(cat /run/munge/ci.pid)" >> "$STATE/pids"

# mariadb for slurmdbd (so `sacct` works for Snakemake's status checks)
if [ ! -d "$STATE/db/mysql" ]; then
  mariadb-install-db --user=root --datadir="$STATE/db" >/dev/null
fi
mariadbd --user=root --datadir="$STATE/db" --socket="$STATE/mysqld.sock" --port=3306 \
  --bind-address=127.0.0.1 --pid-file="$STATE/mysqld.pid" --log-error="$STATE/mysqld.log" &
echo "mariadbd $!" >> "$STATE/pids"
wait_for 60 mariadb --socket="$STATE/mysqld.sock" -uroot -e "select 1"
mariadb --socket="$STATE/mysqld.sock" -uroot -e \
  "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD(''); FLUSH PRIVILEGES;" \
  2>/dev/null || true

slurmdbd
wait_for 30 test -s "$STATE/slurmdbd.pid"
echo "slurmdbd $(cat "$STATE/slurmdbd.pid")" >> "$STATE/pids"
wait_for 30 sacctmgr -i show cluster
sacctmgr -i add cluster mdseg-ci >/dev/null 2>&1 || true

slurmctld
wait_for 30 test -s "$STATE/slurmctld.pid"
echo "slurmctld $(cat "$STATE/slurmctld.pid")" >> "$STATE/pids"
slurmd
wait_for 30 test -s "$STATE/slurmd.pid"
echo "slurmd $(cat "$STATE/slurmd.pid")" >> "$STATE/pids"
wait_for 60 sh -c "sinfo -h -N -o %t | grep -q idle"
sinfo
