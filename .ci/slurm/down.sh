#!/usr/bin/env bash
# Stop the daemons up.sh started, by the PIDs it recorded, last started first.
STATE=${SLURM_CI_STATE:-/tmp/mdseg-slurm}
[ -f "$STATE/pids" ] || exit 0
tac "$STATE/pids" | while read -r name pid; do
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    echo "stopped $name ($pid)"
  fi
done
rm -f "$STATE/pids"
