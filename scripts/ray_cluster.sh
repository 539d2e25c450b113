#!/usr/bin/env bash
# Start or stop a Ray cluster for `python search/run.py --address ...`; stop only what it started.
#
#   scripts/ray_cluster.sh head [PORT]          on the head node (default port 6379)
#   scripts/ray_cluster.sh worker HEAD_IP:PORT  on every other node
#   scripts/ray_cluster.sh local [PORT]         a head and one worker on this machine
#   scripts/ray_cluster.sh stop [PORT]          stop the Ray processes this script started for
#                                               PORT on this machine, and nothing else
#   scripts/ray_cluster.sh pids [PORT]          list them
#
# Each cluster keeps its own folder, CLUSTER_DIR (default /tmp/vgd-ray-<uid>-<PORT>): Ray's temp
# dir of each node it started there (head/, worker/), their logs, Ray's node id and the PID of
# each node's `ray start --block`. Every Ray process of a node descends from that PID, in its own process
# group; `stop` ends those trees and groups, never another search's or test's Ray (`ray stop`
# would end every Ray of the user on the machine).
#
# Ray 2.60 turns on token authentication. `ray start --head` refuses to start without a token
# and, unlike a local ray.init(), makes none: `head` and `local` make one in ~/.ray/auth_token
# when neither it nor RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH exists. Copy that
# file to every node (same path) before `worker`, and run the search with RAY_AUTH_MODE=token
# (this script exports it for the Ray processes it starts; the search driver needs it too):
#
#   RAY_AUTH_MODE=token python search/run.py --space wide --address HEAD_IP:PORT
#
# The driver ships the decoded audio to the trials through Ray's object store and keeps the trial
# folders itself (or in --storage-path s3://...): other nodes need the project installed, not the
# audio nor shared storage (docs/clusters.md).
# Each node offers CPUS_PER_NODE CPUs (default: all; HEAD_CPUS, WORKER_CPUS for one of them) and
# GPUS_PER_NODE GPUs (default: those it has). Ray's GPUs are logical: GPUS_PER_NODE=1 on a
# CPU-only node lets `--gpus-per-trial 0.25` place four trials per node, each falling back to the
# CPU (a dry run of GPU packing).
# HIDE_FROM_WORKER="DIR ..." (local, as root): the worker runs in its own mount namespace with
# each DIR under an empty tmpfs, as on a node that shares no filesystem with the driver; the
# mounts it saw are in CLUSTER_DIR/worker/mounts.txt.
set -euo pipefail
export RAY_AUTH_MODE=token
cmd=${1:-}
common=(--disable-usage-stats)

# sizes NODE: its --num-cpus/--num-gpus (HEAD_CPUS, WORKER_CPUS override CPUS_PER_NODE).
sizes() {
  local cpus=${CPUS_PER_NODE:-}
  [ "$1" = head ] && cpus=${HEAD_CPUS:-$cpus}
  [ "$1" = worker ] && cpus=${WORKER_CPUS:-$cpus}
  [ -n "$cpus" ] && echo "--num-cpus=$cpus"
  [ -n "${GPUS_PER_NODE:-}" ] && echo "--num-gpus=$GPUS_PER_NODE"
  return 0
}

cluster_dir() { echo "${CLUSTER_DIR:-${TMPDIR:-/tmp}/vgd-ray-$(id -u)-$1}"; }

# start NODE ARGS...: `ray start --block` in its own session, logs and PID in $dir/NODE; waits
# until the node is up. With HIDE_FROM_WORKER and NODE=worker, inside `unshare -m` (private).
start() {
  local node=$1 log pid
  shift
  # shellcheck disable=SC2046  # one flag per word
  set -- "$@" $(sizes "$node")
  mkdir -p "$dir/$node"
  log="$dir/$node/ray_start.log"
  if [ "$node" = worker ] && [ -n "${HIDE_FROM_WORKER:-}" ]; then
    # shellcheck disable=SC2016  # expanded by the inner shell
    setsid unshare -m --propagation private sh -c '
      out=$1; shift
      for d in $HIDE_FROM_WORKER; do mount -t tmpfs -o size=1m,mode=0755 vgd-hidden "$d"; done
      cat /proc/self/mountinfo > "$out"
      exec "$@"' sh "$dir/worker/mounts.txt" ray start --block --temp-dir="$dir/$node" "$@" \
      >"$log" 2>&1 </dev/null &
  else
    setsid ray start --block --temp-dir="$dir/$node" "$@" >"$log" 2>&1 </dev/null &
  fi
  pid=$!
  echo "$pid" >"$dir/$node/pid"
  for _ in $(seq 240); do
    grep -q "Ray runtime started" "$log" 2>/dev/null && { record_node_id "$node"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  echo "ray_cluster: the $node node did not start; $log says:" >&2
  tail -20 "$log" >&2
  return 1
}

# A token for a new cluster's head, unless the user gave one (printed by Ray: kept off the tty).
ensure_token() {
  [ -n "${RAY_AUTH_TOKEN:-}" ] || [ -n "${RAY_AUTH_TOKEN_PATH:-}" ] && return 0
  [ -s "$HOME/.ray/auth_token" ] && return 0
  ray get-auth-token --generate >/dev/null
  echo "ray_cluster: made a Ray token in $HOME/.ray/auth_token: copy it to every node"
}

# Ray's id of node NODE into $dir/NODE/node_id (from its session's port files), for reports.
record_node_id() {
  local id
  for _ in $(seq 20); do
    id=$(ls "$dir/$1/session_latest" 2>/dev/null | sed -n 's/^metrics_agent_port_//p' | head -1)
    [ -n "$id" ] && { echo "$id" >"$dir/$1/node_id"; return 0; }
    sleep 0.5
  done
}

# The PIDs of this cluster: each node's `ray start --block`, its descendants and process group.
cluster_pids() {
  local roots=() f p
  for f in "$dir"/*/pid; do
    [ -f "$f" ] || continue
    p=$(cat "$f")
    # A node that died leaves its PID behind, and PIDs come round again (pid_max may be 32768):
    # only a process that still carries this cluster's temp dir is ours to stop.
    { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -qF -- "--temp-dir=$dir/" && roots+=("$p")
  done
  [ ${#roots[@]} -gt 0 ] || return 0
  ps -e -o pid=,ppid=,pgid= | awk -v roots="${roots[*]}" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) { mine[r[i]] = 1; group[r[i]] = 1 } }
    { pid[NR] = $1; ppid[NR] = $2; pg[NR] = $3 }
    END {
      do { grew = 0
        for (i = 1; i <= NR; i++)
          if (!(pid[i] in mine) && (ppid[i] in mine || pg[i] in group)) { mine[pid[i]] = 1; grew = 1 }
      } while (grew)
      for (p in mine) print p
    }' | sort -n | while read -r p; do kill -0 "$p" 2>/dev/null && echo "$p"; done || true
}

# The PIDs given that are still running (zombies are not), on one line; always succeeds.
alive() {
  local p state
  for p in "$@"; do
    state=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1) || state=""
    [ -n "$state" ] && [ "$state" != Z ] && printf '%s ' "$p"
  done
  return 0
}

# wait_gone SECONDS PID...: the PIDs still running after waiting up to SECONDS for them to end.
wait_gone() {
  local left=$(($1 * 2)) pids
  shift
  pids=$(alive "$@")
  while [ -n "${pids// /}" ] && [ "$left" -gt 0 ]; do
    sleep 0.5
    left=$((left - 1))
    pids=$(alive $pids)  # shellcheck disable=SC2086
  done
  echo "$pids"
}

stop() {
  local pids
  pids=$(cluster_pids | tr '\n' ' ')
  if [ -z "${pids// /}" ]; then
    echo "ray_cluster: nothing of $dir is running"
    rm -f "$dir"/*/pid
    return 0
  fi
  echo "ray_cluster: stopping the cluster of $dir: PIDs $pids"
  # shellcheck disable=SC2086  # one PID per word
  kill -TERM $pids 2>/dev/null || true
  pids=$(wait_gone 10 $pids)  # shellcheck disable=SC2086
  if [ -n "${pids// /}" ]; then
    kill -KILL $pids 2>/dev/null || true  # shellcheck disable=SC2086
    pids=$(wait_gone 20 $pids)  # shellcheck disable=SC2086
  fi
  if [ -n "${pids// /}" ]; then
    echo "ray_cluster: still running after SIGKILL: PIDs $pids" >&2
    return 1
  fi
  rm -f "$dir"/*/pid
  echo "ray_cluster: stopped"
}

case "$cmd" in
  head)
    port=${2:-6379}
    dir=$(cluster_dir "$port")
    ensure_token
    start head --head --port="$port" --include-dashboard=false \
      --ray-client-server-port=$((port + 1)) --dashboard-port=$((port + 2)) "${common[@]}" ||
      { stop; exit 1; }
    echo "Ray head on port $port (CLUSTER_DIR $dir); on every other node:"
    echo "  scripts/ray_cluster.sh worker <this node's IP>:$port"
    ;;
  worker)
    [ -n "${2:-}" ] || { echo "usage: $0 worker HEAD_IP:PORT" >&2; exit 2; }
    dir=$(cluster_dir "${2##*:}")
    start worker --address="$2" "${common[@]}" || { stop; exit 1; }
    ;;
  local)
    port=${2:-6379}
    dir=$(cluster_dir "$port")
    ensure_token
    start head --head --node-ip-address=127.0.0.1 --port="$port" --include-dashboard=false \
      --ray-client-server-port=$((port + 1)) --dashboard-port=$((port + 2)) "${common[@]}" ||
      { stop; exit 1; }
    start worker --address="127.0.0.1:$port" --node-ip-address=127.0.0.1 "${common[@]}" || {
      stop
      exit 1
    }
    echo "two-node Ray cluster on port $port (CLUSTER_DIR $dir); search with:"
    echo "  RAY_AUTH_MODE=token python search/run.py --space smoke --address 127.0.0.1:$port"
    echo "stop it with: scripts/ray_cluster.sh stop $port"
    ;;
  stop | pids)
    dir=$(cluster_dir "${2:-6379}")
    if [ "$cmd" = pids ]; then cluster_pids; else stop; fi
    ;;
  *)
    sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
