#!/usr/bin/env bash
# The RabbitMQ cluster test: three RabbitMQ nodes (containers of one image, distinct node
# names rabbit@rabbit1..3, one Erlang cookie, each on its own host port) joined into one
# cluster; the system's processes run on this host against it with AMQP_URL listing all
# three nodes, so every queue is a quorum queue replicated on all three. While orders
# flow, the node the processes connected to is stopped, then started again, then
# another node is restarted. scripts/load_and_audit.py audits: every order ends, none is
# lost or oversold, no vendor holds an order twice or one we do not know.
#
#   bash scripts/rabbitmq-cluster-test.sh
#
# Needs a running Docker engine, the local PostgreSQL and Redis (DATABASE_URL's server,
# REDIS_URL) and the binaries in target/debug (built when missing). The image is
# AGGREGATOR_RABBITMQ_IMAGE (scripts/local-images.sh builds it when unset).
set -euo pipefail
cd "$(dirname "$0")/.."

# Every line is also kept in $logs/test.txt (once $logs exists), so a failure can repeat
# its reason after the processes' and nodes' logs.
say() {
  local line
  line=$(printf '[rabbitmq-cluster] +%ss %s' "$SECONDS" "$*")
  echo "$line"
  if [ -d "${logs:-}" ]; then echo "$line" >>"$logs/test.txt"; fi
}

docker info >/dev/null 2>&1 || { say "no Docker engine answers (start dockerd)"; exit 1; }
if [ -z "${AGGREGATOR_RABBITMQ_IMAGE:-}" ]; then
  say "building the local service images"
  eval "$(bash scripts/local-images.sh)"
fi
target=${CARGO_TARGET_DIR:-target}
# The binaries of the README's test command (same features, so nothing builds twice).
cargo test --workspace --no-run --quiet

read -r port1 port2 port3 api_port vendor_a_port vendor_b_port < <(python3 scripts/free_ports.py 6)
ports=("$port1" "$port2" "$port3")

run=cluster-$$
net=aggregator-$run
base_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
database=aggregator_${run//-/_}
database_url=${base_url%/*}/$database
logs=$target/rabbitmq-cluster
rm -rf "$logs"
mkdir -p "$logs"
pids=()

finish() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" != 0 ]; then
    say "failed; last lines of each log:"
    for file in "$logs"/*.log; do echo "== $file"; tail -n 15 "$file"; done
    for n in 1 2 3; do echo "== rabbit$n"; docker logs --tail 15 "$net-rabbit$n" 2>&1 || true; done
    # The reason last, where a log's tail shows it.
    say "failed; the test's own last lines again:"
    tail -n 8 "$logs/test.txt" 2>/dev/null || true
  fi
  for n in 1 2 3; do docker rm -f "$net-rabbit$n" >/dev/null 2>&1 || true; done
  docker network rm "$net" >/dev/null 2>&1 || true
  psql "$base_url" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
  exit "$status"
}
trap finish EXIT

# Three nodes, one cookie, each its own host name (rabbit@rabbitN) and host port.
cookie=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
docker network create "$net" >/dev/null
for n in 1 2 3; do
  docker run -d --name "$net-rabbit$n" --hostname "rabbit$n" --network "$net" \
    -e RABBITMQ_ERLANG_COOKIE="$cookie" -e RABBITMQ_DEFAULT_USER=guest -e RABBITMQ_DEFAULT_PASS=guest \
    -p "127.0.0.1:${ports[$((n - 1))]}:5672" "$AGGREGATOR_RABBITMQ_IMAGE" >/dev/null
done
node_up() { docker exec "$net-rabbit$1" rabbitmq-diagnostics -q check_running >/dev/null 2>&1; }
wait_node() {
  for _ in $(seq 1 90); do node_up "$1" && return 0; sleep 1; done
  say "rabbit$1 did not start within 90 s"; return 1
}
for n in 1 2 3; do wait_node "$n"; done
for n in 2 3; do
  docker exec "$net-rabbit$n" rabbitmqctl -q stop_app
  docker exec "$net-rabbit$n" rabbitmqctl -q join_cluster rabbit@rabbit1
  docker exec "$net-rabbit$n" rabbitmqctl -q start_app
done
running=$(docker exec "$net-rabbit1" rabbitmqctl -q cluster_status --formatter json \
  | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["running_nodes"]))')
[ "$running" = 3 ] || { say "the cluster has $running running nodes, not 3"; exit 1; }
say "three nodes in one cluster: rabbit@rabbit1..3 on ports ${ports[*]}"

amqp_url="amqp://guest:guest@127.0.0.1:$port1/%2f,amqp://guest:guest@127.0.0.1:$port2/%2f,amqp://guest:guest@127.0.0.1:$port3/%2f"
psql "$base_url" -qc "CREATE DATABASE $database" >/dev/null

# The system on this host: two vendors, the API with the relay, sweeper and sync, and two
# workers, every one given the three nodes.
admin_key=cluster-admin-key-0000
client_key=cluster-client-key-000
export DATABASE_URL=$database_url AMQP_URL=$amqp_url REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export AGGREGATOR_QUEUE_PREFIX="$run." AGGREGATOR_CACHE_PREFIX="$run:" AGGREGATOR_QUORUM_QUEUES=true
export AGGREGATOR_API_ADDR=127.0.0.1:$api_port AGGREGATOR_LOG_DIR=none AGGREGATOR_SYNC_INTERVAL_SECS=2
export AGGREGATOR_VENDORS="VendorA=http://127.0.0.1:$vendor_a_port,VendorB=http://127.0.0.1:$vendor_b_port"
export AGGREGATOR_API_KEYS="admin:$admin_key,client:test:$client_key"
"$target/debug/mock-vendors" --vendor "VendorA:$vendor_a_port" --vendor "VendorB:$vendor_b_port" \
  >"$logs/vendors.log" 2>&1 &
pids+=($!)
"$target/debug/aggregator" api relay sweeper sync >"$logs/api.log" 2>&1 &
pids+=($!)
for w in 1 2; do
  "$target/debug/aggregator" worker >"$logs/worker-$w.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 1 60); do
  curl -fsS -o /dev/null -H "Authorization: Bearer $admin_key" "http://127.0.0.1:$api_port/health/ready" && break
  sleep 1
done
members=$(docker exec "$net-rabbit1" rabbitmqctl -q list_queues name type members --formatter json \
  | python3 -c 'import json, sys
queues = [q for q in json.load(sys.stdin) if q["name"] == sys.argv[1]]
print(len(queues[0]["members"]) if queues and queues[0]["type"] == "quorum" else 0)' "${run}.order_queue")
[ "$members" = 3 ] || { say "${run}.order_queue is not a quorum queue on 3 nodes ($members)"; exit 1; }
say "the system is up; ${run}.order_queue is a quorum queue on all 3 nodes"

python3 scripts/load_and_audit.py --name rabbitmq-cluster --run "$run" --orders 900 \
  --api "http://127.0.0.1:$api_port" \
  --vendor-a "http://127.0.0.1:$vendor_a_port" --vendor-b "http://127.0.0.1:$vendor_b_port" \
  --admin-key "$admin_key" --client-key "$client_key" \
  --sql "psql $database_url -At -c" \
  --fault "0.2=docker stop $net-rabbit1" \
  --fault "0.4=docker start $net-rabbit1 && for i in \$(seq 1 90); do docker exec $net-rabbit1 rabbitmq-diagnostics -q check_running >/dev/null 2>&1 && break; sleep 1; done" \
  --fault "0.75=docker restart $net-rabbit2" 2>&1 | tee -a "$logs/test.txt"
# The processes were on rabbit1 (first in the list) and had to move.
moved=$(cat "$logs"/api.log "$logs"/worker-*.log | grep -c 'connected to another rabbitmq node' || true)
[ "$moved" -gt 0 ] || { say "no process moved to another node when rabbit1 stopped"; exit 1; }
say "connections moved to another node $moved times"
dead=$(for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || echo "$pid"; done)
[ -z "$dead" ] || { say "processes exited during the test: $dead"; exit 1; }
say "passed"
