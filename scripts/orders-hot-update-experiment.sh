#!/usr/bin/env bash
# "Could the confirmation's order update be heap-only?" in docs/BENCHMARKS.md: the same
# placement-then-confirmation writes (benches/sql/orders_confirm.sql, 64 orders a
# transaction) against the orders table as the migrations leave it, whose status is in
# two indexes (`orders_by_status`, the `orders_due` predicate) so no status change can be
# heap-only, and against the same table without those two indexes and with room on each
# page (fillfactor 70). Throwaway databases; runs the two in turn, ROUNDS times.
#
#   bash scripts/orders-hot-update-experiment.sh   # ADMIN_URL, SECONDS, CLIENTS, ROUNDS
set -euo pipefail
cd "$(dirname "$0")/.."
admin_url=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
seconds=${SECONDS_PER_RUN:-15}
clients=${CLIENTS:-4}
rounds=${ROUNDS:-2}
indexed="aggregator_hot_indexed_$$"
heap_only="aggregator_hot_heap_only_$$"
cleanup() {
  for database in "$indexed" "$heap_only"; do
    psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null
  done
}
trap cleanup EXIT
for database in "$indexed" "$heap_only"; do
  url="${admin_url%/*}/$database"
  psql -q "$admin_url" -c "CREATE DATABASE $database"
  for migration in aggregator-postgres/migrations/*.sql; do
    psql -q -v ON_ERROR_STOP=1 "$url" -f "$migration"
  done
  psql -q -v ON_ERROR_STOP=1 "$url" -c "CREATE SEQUENCE experiment_batches"
done
psql -q -v ON_ERROR_STOP=1 "${admin_url%/*}/$heap_only" <<'SQL'
DROP INDEX orders_by_status;
DROP INDEX orders_due;
ALTER TABLE orders SET (fillfactor = 70);
SQL

busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
wal_lsn() { psql -qtA "$1" -c "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"; }

echo "| schema | orders/s | machine CPU µs/order | WAL bytes/order | heap-only updates |"
echo "|---|---:|---:|---:|---:|"
for _ in $(seq "$rounds"); do
  for database in "$indexed" "$heap_only"; do
    url="${admin_url%/*}/$database"
    psql -q "$url" -c "VACUUM ANALYZE orders" >/dev/null
    before_cpu=$(busy_jiffies)
    before_wal=$(wal_lsn "$url")
    before_upd=$(psql -qtA "$url" -c "SELECT n_tup_upd || ' ' || n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'orders'")
    run=$(pgbench -n -c "$clients" -j 2 -T "$seconds" -f benches/sql/orders_confirm.sql "$url" 2>&1) || {
      echo "pgbench failed: $run" >&2
      exit 1
    }
    tps=$(awk '/^tps/{print $3}' <<<"$run")
    sleep 1 # the statistics collector
    after_cpu=$(busy_jiffies)
    after_wal=$(wal_lsn "$url")
    after_upd=$(psql -qtA "$url" -c "SELECT n_tup_upd || ' ' || n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'orders'")
    orders=$(awk -v t="$tps" -v s="$seconds" 'BEGIN{printf "%d", t * s * 64}')
    name=$([ "$database" = "$indexed" ] && echo "status indexed (as shipped)" || echo "status not indexed, fillfactor 70")
    awk -v name="$name" -v tps="$tps" -v orders="$orders" -v cpu=$((after_cpu - before_cpu)) \
        -v hz="$(getconf CLK_TCK)" -v wal=$((after_wal - before_wal)) \
        -v b="$before_upd" -v a="$after_upd" 'BEGIN{
      split(b, x, " "); split(a, y, " "); upd = y[1] - x[1]; hot = y[2] - x[2];
      printf "| %s | %.0f | %.1f | %.0f | %.0f%% |\n", name, tps * 64, cpu / hz * 1e6 / orders,
        wal / orders, (upd > 0 ? 100 * hot / upd : 0) }'
  done
done
