#!/usr/bin/env bash
# Orders per second through the whole running system on the real services: the
# `aggregator` binary (API, relay, workers, sweeper, sync) and the mock vendors, both
# release builds, hit by wrk with one-unit orders for 10 s; then how many of them the
# workers confirmed. Cases: `hot` (every order for LAPTOP-001, two rows at two vendors),
# `spread` (orders over 1,990 generated products), and `intake` (hot, with no worker
# running: placement, relay and sync only, the figure the seed's Node system was measured on).
#
#   bash scripts/bench-full-stack.sh            # needs wrk, psql, rabbitmqctl and the
#                                                # three services on their default ports
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_CASE="${SECONDS_PER_CASE:-10}"
DB=fsbench
PG=postgres://postgres@127.0.0.1:5432
cargo build --release --bin aggregator -p order-aggregator >/dev/null 2>&1
cargo build --release -p mock-vendors >/dev/null 2>&1
work=$(mktemp -d)
# The processes this script started, stopped by PID only (never by name: the machine is
# shared).
started=()
stop_started() {
  for pid in "${started[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${started[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  started=()
}
cleanup() {
  stop_started
  psql "$PG/postgres" -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  for q in $(rabbitmqctl list_queues -q name 2>/dev/null | grep "^$DB\." || true); do
    rabbitmqctl delete_queue "$q" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
cat >"$work/hot.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"customerId": "bench", "items": [{"sku": "LAPTOP-001", "quantity": 1}]}'
LUA
cat >"$work/spread.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = string.format('{"customerId": "bench", "items": [{"sku": "ITEM-%06d", "quantity": 1}]}', math.random(11, 2000))
  return wrk.format(nil, nil, nil, body)
end
LUA
run_case() {
  local name=$1 script=$2 parts=$3
  stop_started
  psql "$PG/postgres" -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null 2>&1
  ./target/release/mock-vendors --skus 2000 >"$work/vendors.log" 2>&1 &
  started+=($!)
  sleep 1
  for sku in LAPTOP-a-001:3001 LAPTOP-b-001:3002; do
    curl -s -X POST "localhost:${sku#*:}/simulate/stock" -H 'Content-Type: application/json' \
      -d "{\"sku\":\"${sku%:*}\",\"quantity\":1000000}" >/dev/null
  done
  # shellcheck disable=SC2086
  DATABASE_URL="$PG/$DB" AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f REDIS_URL=redis://127.0.0.1:6379 \
    AGGREGATOR_QUEUE_PREFIX="$DB." AGGREGATOR_CACHE_PREFIX="$DB:" AGGREGATOR_LOG_DIR=none RUST_LOG=warn \
    AGGREGATOR_RATE_LIMIT_PER_SEC=1000000 AGGREGATOR_SYNC_INTERVAL_SECS=3600 \
    ./target/release/aggregator $parts >"$work/aggregator.log" 2>&1 &
  started+=($!)
  sleep 4
  local out
  out=$(wrk -t2 -c50 -d"${SECONDS_PER_CASE}s" --latency -s "$work/$script" http://127.0.0.1:3000/api/orders)
  sleep 8
  local metrics placed confirmed
  metrics=$(curl -s localhost:3000/metrics)
  placed=$(awk '/^http_requests_total\{route="\/api\/orders",method="POST",status="201"\}/ {print $2}' <<<"$metrics")
  confirmed=$(awk '/^aggregator_orders\{status="confirmed"\}/ {print $2}' <<<"$metrics")
  printf '%-8s %6s requests/s (%s orders placed, %s confirmed afterwards)  p50 %-9s p99 %-9s %s\n' "$name" \
    "$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")" "${placed:-0}" "${confirmed:-0}" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")" \
    "$(grep -o 'Non-2xx or 3xx responses: [0-9]*' <<<"$out" || true)"
}
echo "whole system, wrk -t2 -c50 -d${SECONDS_PER_CASE}s, everything on this machine"
run_case hot hot.lua "all"
run_case spread spread.lua "all"
run_case intake hot.lua "api relay sync"
