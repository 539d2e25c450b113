#!/usr/bin/env bash
# Start or stop a Ray cluster for `python search/run.py --address ...`.
#
#   scripts/ray_cluster.sh head [PORT]          on the head node (default port 6379)
#   scripts/ray_cluster.sh worker HEAD_IP:PORT  on every other node
#   scripts/ray_cluster.sh local [PORT]         a head and one worker on this machine, over loopback
#   scripts/ray_cluster.sh stop                 stop the Ray processes of this machine
#
# Ray 2.60 turns on token authentication: `head` creates a token in ~/.ray/auth_token. Copy that
# file to every node (same path) before `worker`, and run the search with RAY_AUTH_MODE=token
# (this script exports it for the Ray processes it starts; the search driver needs it too):
#
#   RAY_AUTH_MODE=token python search/run.py --space wide --address HEAD_IP:PORT \
#       --storage-path /shared/vgd-ray --cache-dir /shared/vgd-cache
#
# Every node needs the project installed (`pip install -e .[search]`), the audio at the same
# paths, and --storage-path/--cache-dir on storage all nodes see (NFS or similar).
# Each node offers CPUS_PER_NODE CPUs (default: all) and GPUS_PER_NODE GPUs (default: those it
# has). Ray's GPUs are logical: GPUS_PER_NODE=1 on a CPU-only node lets `--gpus-per-trial 0.25`
# place four trials per node, each falling back to the CPU (a dry run of GPU packing).
set -euo pipefail
export RAY_AUTH_MODE=token
cmd=${1:-}
sizes=()
[ -n "${CPUS_PER_NODE:-}" ] && sizes+=(--num-cpus="$CPUS_PER_NODE")
[ -n "${GPUS_PER_NODE:-}" ] && sizes+=(--num-gpus="$GPUS_PER_NODE")
common=(--disable-usage-stats "${sizes[@]}")

case "$cmd" in
  head)
    ray start --head --port="${2:-6379}" --include-dashboard=false "${common[@]}"
    ;;
  worker)
    [ -n "${2:-}" ] || { echo "usage: $0 worker HEAD_IP:PORT" >&2; exit 2; }
    ray start --address="$2" "${common[@]}"
    ;;
  local)
    port=${2:-6379}
    ray start --head --node-ip-address=127.0.0.1 --port="$port" --include-dashboard=false \
      "${common[@]}"
    ray start --address="127.0.0.1:$port" --node-ip-address=127.0.0.1 "${common[@]}"
    echo "two-node Ray cluster on 127.0.0.1:$port; search with:"
    echo "  RAY_AUTH_MODE=token python search/run.py --space smoke --address 127.0.0.1:$port"
    ;;
  stop)
    ray stop
    ;;
  *)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
