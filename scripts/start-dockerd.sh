#!/usr/bin/env bash
# Start a Docker engine where none answers (machines without systemd), and wait for it.
set -euo pipefail
if docker info >/dev/null 2>&1; then
  echo "docker engine already running"
  exit 0
fi
command -v dockerd >/dev/null || { echo "dockerd not installed: apt-get install docker.io" >&2; exit 1; }
log=${DOCKERD_LOG:-/tmp/etcdlab-dockerd.log}
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 60); do
  if docker info >/dev/null 2>&1; then
    echo "docker engine started (log: $log)"
    exit 0
  fi
  sleep 1
done
echo "dockerd did not answer within 60 s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
