#!/usr/bin/env bash
# The compose test: docker-compose.yml brought up on a real Docker engine, driven and
# broken by scripts/load_and_audit.py, audited, then torn down.
#
#   bash scripts/compose-test.sh            # as CI runs it (after `cargo test --workspace`)
#
# 1. Images: the service images named by AGGREGATOR_{POSTGRES,RABBITMQ,REDIS,PROMETHEUS}_IMAGE
#    (scripts/local-images.sh builds Debian stand-ins and is run when they are unset), and
#    order-aggregator built with `--target from-host` from the binaries in target/debug
#    (CARGO_TARGET_DIR honoured; `cargo test --workspace --no-run` builds what is missing).
# 2. `docker-compose --profile monitoring up -d` under a project name of its own, on free
#    host ports, with test settings (a 2 s sync, alert rules with short `for` clauses);
#    waits until every container's health check passes.
# 3. scripts/load_and_audit.py: orders under load while the worker is killed and the
#    database restarted, the audit, then Prometheus: rules loaded, targets up, queries
#    of the rules and the Grafana dashboard against the exported metrics, and VendorA's
#    outage raising its alert.
# 4. `docker-compose down -v` (also when anything fails), printing the logs on failure.
#
# Needs a running Docker engine and docker-compose (Debian's package, 1.29).
set -euo pipefail
cd "$(dirname "$0")/.."

# Every line is also kept in $work/test.log (once $work exists), so a failure can repeat
# its reason after the containers' logs.
say() {
  local line
  line=$(printf '[compose-test] +%ss %s' "$SECONDS" "$*")
  echo "$line"
  if [ -d "${work:-}" ]; then echo "$line" >>"$work/test.log"; fi
}

command -v docker-compose >/dev/null || { say "docker-compose is not installed (apt-get install docker-compose)"; exit 1; }
docker info >/dev/null 2>&1 || { say "no Docker engine answers (start dockerd)"; exit 1; }

if [ -z "${AGGREGATOR_POSTGRES_IMAGE:-}" ] || [ -z "${AGGREGATOR_RABBITMQ_IMAGE:-}" ] \
  || [ -z "${AGGREGATOR_REDIS_IMAGE:-}" ] || [ -z "${AGGREGATOR_PROMETHEUS_IMAGE:-}" ]; then
  say "building the local service images"
  eval "$(bash scripts/local-images.sh)"
fi
export AGGREGATOR_POSTGRES_IMAGE AGGREGATOR_RABBITMQ_IMAGE AGGREGATOR_REDIS_IMAGE AGGREGATOR_PROMETHEUS_IMAGE

# The application image, from the binaries compiled here.
target=${CARGO_TARGET_DIR:-target}
bins=(aggregator stock-sync mock-vendors aggregator-migrate aggregator-api)
# The binaries of the README's test command (same features, so nothing builds twice).
cargo test --workspace --no-run --quiet
work=$target/compose-test
rm -rf "$work"
mkdir -p "$work/context/bin" "$work/prometheus"
for bin in "${bins[@]}"; do
  # Without their debug sections the binaries are a fifth of the size.
  objcopy --strip-debug "$target/debug/$bin" "$work/context/bin/$bin"
done
export AGGREGATOR_IMAGE=order-aggregator:compose-test
base=${AGGREGATOR_BASE_IMAGE:-aggregator-local/debian:bookworm}
say "building $AGGREGATOR_IMAGE from host binaries on $base"
docker build --quiet --target from-host --build-arg "RUNTIME_BASE=$base" \
  -f Dockerfile -t "$AGGREGATOR_IMAGE" "$work/context" >/dev/null

# A plain `docker run` of the image, as docs/RUNNING.md shows it: keys and vendor URLs, no
# other settings (in-memory store, queue and cache). It must serve from outside the
# container, ask for keys, and take an order.
run_net=aggregator-run-$$
run_port=$(python3 scripts/free_ports.py 1)
admin_key=change-me-admin-key-000
client_key=change-me-client-key-00
remove_run() {
  docker rm -f "$run_net-api" "$run_net-vendors" >/dev/null 2>&1 || true
  docker network rm "$run_net" >/dev/null 2>&1 || true
}
trap remove_run EXIT
say "docker run: the image alone, with keys and vendors"
docker network create "$run_net" >/dev/null
docker run -d --name "$run_net-vendors" --network "$run_net" "$AGGREGATOR_IMAGE" \
  mock-vendors --host 0.0.0.0 >/dev/null
docker run -d --name "$run_net-api" --network "$run_net" -p "127.0.0.1:$run_port:3000" \
  -e "AGGREGATOR_API_KEYS=admin:$admin_key,client:test:$client_key" \
  -e "AGGREGATOR_VENDORS=VendorA=http://$run_net-vendors:3001,VendorB=http://$run_net-vendors:3002" \
  "$AGGREGATOR_IMAGE" >/dev/null
run_url=http://127.0.0.1:$run_port
for _ in $(seq 1 60); do
  curl -fsS -o /dev/null -H "Authorization: Bearer $admin_key" "$run_url/health" && break
  sleep 1
done
curl -fsS -o /dev/null -H "Authorization: Bearer $admin_key" "$run_url/health" \
  || { docker logs --tail 40 "$run_net-api"; say "docker run: /health never answered"; exit 1; }
status=$(curl -s -o /dev/null -w '%{http_code}' "$run_url/api/orders")
[ "$status" = 401 ] || { say "docker run: /api/orders without a key answered $status, not 401"; exit 1; }
for _ in $(seq 1 30); do
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$run_url/api/orders" \
    -H "Authorization: Bearer $client_key" -H 'Content-Type: application/json' \
    -d '{"customerId": "test", "items": [{"sku": "LAPTOP-001", "quantity": 1}]}')
  [ "$status" = 201 ] && break
  sleep 1   # the first sync may still be on its way
done
[ "$status" = 201 ] || { docker logs --tail 40 "$run_net-api"; say "docker run: an order answered $status, not 201"; exit 1; }
health=$(docker inspect --format '{{.State.Health.Status}}' "$run_net-api")
say "docker run: serves on 0.0.0.0:3000 (health check: $health), 401 without a key, 201 for an order"
remove_run
trap - EXIT

# Free host ports for everything compose publishes (the machine's own services keep
# theirs).
read -r API_HOST_PORT VENDOR_A_HOST_PORT VENDOR_B_HOST_PORT POSTGRES_HOST_PORT RABBITMQ_HOST_PORT \
  RABBITMQ_UI_HOST_PORT REDIS_HOST_PORT PROMETHEUS_HOST_PORT < <(python3 scripts/free_ports.py 8)
export API_HOST_PORT VENDOR_A_HOST_PORT VENDOR_B_HOST_PORT POSTGRES_HOST_PORT RABBITMQ_HOST_PORT \
  RABBITMQ_UI_HOST_PORT REDIS_HOST_PORT PROMETHEUS_HOST_PORT

# Test settings: syncs every 2 s, and the alert rules with their `for` clauses cut to
# 10 s so an alert fires within the test (the expressions are the shipped ones).
cp deploy/prometheus/compose.yml "$work/prometheus/compose.yml"
sed -E 's/^( +for: ).*/\110s/' deploy/prometheus/alerts.yml >"$work/prometheus/alerts.yml"
cat >"$work/override.yml" <<EOF
services:
  api:
    environment:
      AGGREGATOR_SYNC_INTERVAL_SECS: "2"
  prometheus:
    volumes:
      - $(cd "$work/prometheus" && pwd):/etc/prometheus:ro
EOF
# The override must replace the monitoring volume, not add to it: compose merges
# volumes by container path, so the same path wins.
project=aggregator-compose-$$
compose=(docker-compose -p "$project" -f docker-compose.yml -f "$work/override.yml" --profile monitoring)

finish() {
  local status=$?
  if [ "$status" != 0 ]; then
    say "failed; the containers' last log lines:"
    "${compose[@]}" ps || true
    "${compose[@]}" logs --no-color --tail 40 || true
    # The reason last, where a log's tail shows it, not above the containers' lines.
    say "failed; the test's own last lines again:"
    tail -n 8 "$work/test.log" 2>/dev/null || true
  fi
  say "tearing down $project"
  "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  exit "$status"
}
trap finish EXIT

say "docker-compose up ($project)"
"${compose[@]}" up -d --no-build 2>&1 | sed 's/^/  /'

services=(postgres rabbitmq redis mock-vendors api worker prometheus)
deadline=$((SECONDS + 240))
while :; do
  waiting=()
  for service in "${services[@]}"; do
    id=$("${compose[@]}" ps -q "$service")
    health=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id" 2>/dev/null || echo missing)
    [ "$health" = healthy ] || waiting+=("$service:$health")
  done
  [ "${#waiting[@]}" = 0 ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "not healthy within 240 s: ${waiting[*]}"
    exit 1
  fi
  sleep 2
done
say "every container is healthy: ${services[*]}"

python3 scripts/load_and_audit.py --name compose-test --run "compose-$$" \
  --api "http://127.0.0.1:$API_HOST_PORT" \
  --vendor-a "http://127.0.0.1:$VENDOR_A_HOST_PORT" \
  --vendor-b "http://127.0.0.1:$VENDOR_B_HOST_PORT" \
  --sql "${compose[*]} exec -T postgres psql -U postgres -At -c" \
  --fault "0.33=${compose[*]} kill -s SIGKILL worker && ${compose[*]} start worker" \
  --fault "0.67=${compose[*]} restart postgres" \
  --worker-metrics "${compose[*]} exec -T worker curl -fsS http://127.0.0.1:9464/metrics" \
  --prometheus "http://127.0.0.1:$PROMETHEUS_HOST_PORT" 2>&1 | tee -a "$work/test.log"
say "passed"
