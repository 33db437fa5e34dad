#!/usr/bin/env bash
# The operator console in a real headless browser: starts the `full_stack` example (the
# whole system and its two mock vendors in one process, with an admin key and client
# keys for alice and bob), then
# runs scripts/console_browser.py (Selenium, chromedriver) against /console: log in, the
# overview, an order turning confirmed, a cancel, a vendor outage, a dead letter
# replayed, a client key kept to its own orders. Screenshots go to docs/console/.
#
#   bash scripts/console-browser.sh             # on in-memory backends, then on the
#                                               # real services when their URLs are set
#   SHOTS= bash scripts/console-browser.sh      # without screenshots
#
# Needs python3 (Selenium from PyPI goes into target/console-venv), Debian's chromium
# and chromium-driver. Stops only the processes it started. The real-services run uses a
# database of its own (dropped at the end), and queue names and cache keys under
# `console-browser.` that the next run reuses.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/console-venv
selenium=4.27.1
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import selenium, sys; sys.exit(selenium.__version__ != '$selenium')" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "selenium==$selenium"
fi
# The binaries of the README's test command (same features, so nothing builds twice).
cargo test --workspace --no-run --quiet

free_port() { python3 scripts/free_ports.py 1; }
pids=()
databases=()
admin_url=${DATABASE_URL:-}
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for database in "${databases[@]}"; do
    psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
  done
}
trap stop EXIT

export CONSOLE_ADMIN_KEY=console-admin-key-000
export CONSOLE_ALICE_KEY=console-alice-key-000
export CONSOLE_BOB_KEY=console-bob-key-00000
export CONSOLE_SHOTS=${SHOTS-docs/console}

# run LABEL [VAR=VALUE ...]: one system on fresh ports with the extra settings, then the
# browser steps against it.
run() {
  local label=$1
  shift
  local port_a port_b port_api base
  port_a=$(free_port)
  port_b=$(free_port)
  port_api=$(free_port)
  env -u DATABASE_URL -u AMQP_URL -u REDIS_URL "$@" \
    AGGREGATOR_API_ADDR="127.0.0.1:$port_api" \
    AGGREGATOR_API_KEYS="admin:$CONSOLE_ADMIN_KEY,client:alice:$CONSOLE_ALICE_KEY,client:bob:$CONSOLE_BOB_KEY" \
    AGGREGATOR_VENDORS="VendorA=http://127.0.0.1:$port_a,VendorB=http://127.0.0.1:$port_b" \
    AGGREGATOR_LOG_DIR=none RUST_LOG=error \
    AGGREGATOR_RETRY_DELAYS_MS=100 AGGREGATOR_VENDOR_BREAKER_WAIT_SECS=0 \
    AGGREGATOR_VENDOR_TIMEOUT_MS=2000 AGGREGATOR_VENDOR_BREAKER_OPEN_SECS=1 \
    AGGREGATOR_SYNC_INTERVAL_SECS=3600 \
    target/debug/examples/full_stack >"target/console-$label.log" 2>&1 &
  pids+=($!)
  base="http://127.0.0.1:$port_api"
  python3 scripts/wait_for_url.py "$base/health/ready" 60 "the system"
  CONSOLE_BASE=$base CONSOLE_VENDOR_A="http://127.0.0.1:$port_a" CONSOLE_VENDOR_B="http://127.0.0.1:$port_b" CONSOLE_LABEL=" ($label)" \
    "$venv/bin/python" scripts/console_browser.py
}

run memory
if [ -n "${DATABASE_URL:-}" ] && [ -n "${AMQP_URL:-}" ] && [ -n "${REDIS_URL:-}" ]; then
  database="aggregator_console_$$"
  psql -q "$DATABASE_URL" -c "CREATE DATABASE $database"
  databases+=("$database")
  # Screenshots come from the in-memory run; this one checks the same steps.
  CONSOLE_SHOTS='' run real \
    DATABASE_URL="${DATABASE_URL%/*}/$database" AMQP_URL="$AMQP_URL" REDIS_URL="$REDIS_URL" \
    AGGREGATOR_QUEUE_PREFIX=console-browser. AGGREGATOR_CACHE_PREFIX=console-browser:
elif [ "${AGGREGATOR_REQUIRE_SERVICES:-}" = 1 ]; then
  echo "console: AGGREGATOR_REQUIRE_SERVICES=1 but DATABASE_URL, AMQP_URL or REDIS_URL is unset" >&2
  exit 1
fi
