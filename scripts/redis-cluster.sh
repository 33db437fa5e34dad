#!/usr/bin/env bash
# A local three-node Redis Cluster (three primaries, no replicas), for the cluster tests.
#
#   scripts/redis-cluster.sh start DIR PORT   starts nodes on 127.0.0.1:PORT, PORT+1 and
#                                             PORT+2 (files in DIR), joins them into one
#                                             cluster and waits until it serves
#   scripts/redis-cluster.sh stop DIR         stops the nodes started in DIR (by their
#                                             PIDs) and deletes DIR
set -euo pipefail

start() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  local nodes=()
  for offset in 0 1 2; do
    local p=$((port + offset))
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$dir/nodes-$p.conf" --cluster-node-timeout 2000 \
      --save "" --appendonly no --dir "$dir" --daemonize yes \
      --pidfile "$dir/redis-$p.pid" --logfile "$dir/redis-$p.log"
    nodes+=("127.0.0.1:$p")
  done
  for offset in 0 1 2; do
    local p=$((port + offset))
    for _ in $(seq 1 50); do
      redis-cli -p "$p" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 || {
    echo "redis-cluster: creating the cluster failed:" >&2
    cat "$dir/create.log" >&2
    exit 1
  }
  for _ in $(seq 1 100); do
    local ok=1
    for offset in 0 1 2; do
      # Serving, and this node knows all three primaries and their slots.
      local info
      info=$(redis-cli -p $((port + offset)) cluster info 2>/dev/null || true)
      for want in cluster_state:ok cluster_known_nodes:3 cluster_size:3 cluster_slots_ok:16384; do
        grep -q "$want" <<<"$info" || ok=0
      done
    done
    [ "$ok" = 1 ] && return 0
    sleep 0.1
  done
  echo "redis-cluster: the nodes did not agree on one serving cluster" >&2
  exit 1
}

stop() {
  local dir=$1
  for pidfile in "$dir"/redis-*.pid; do
    [ -f "$pidfile" ] || continue
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}

case "${1:-}" in
  start) [ $# = 3 ] || { echo "usage: $0 start DIR PORT" >&2; exit 2; }; start "$2" "$3" ;;
  stop) [ $# = 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$2" ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
