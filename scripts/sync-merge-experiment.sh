#!/usr/bin/env bash
# The "fourth look" at the sync in docs/BENCHMARKS.md: INSERT ... ON CONFLICT against an
# UPDATE whose merge join locks rows in SKU order, on a throwaway database holding one
# 100,000-SKU vendor (and two small ones), for a 10,000-row chunk and a 1,000-row page.
#
#   bash scripts/sync-merge-experiment.sh        # ADMIN_URL defaults to the local server
set -euo pipefail
cd "$(dirname "$0")/.."
admin_url=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
database="aggregator_sync_merge_$$"
url="${admin_url%/*}/$database"
trap 'psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null' EXIT
psql -q "$admin_url" -c "CREATE DATABASE $database"
for migration in aggregator-postgres/migrations/*.sql; do
  psql -q -v ON_ERROR_STOP=1 "$url" -f "$migration"
done
psql -q -v ON_ERROR_STOP=1 "$url" <<'SQL'
INSERT INTO vendors (id, name, base_url, priority)
VALUES ('VendorA', 'VendorA', 'http://x', 1), ('VendorB', 'VendorB', 'http://x', 2), ('VendorC', 'VendorC', 'http://x', 3);
INSERT INTO vendor_stock (vendor_id, sku, product_id, reported, as_of, price_minor, currency)
SELECT v, 'ITEM-' || lower(substr(v, 7, 1)) || '-' || lpad(i::text, 6, '0'), 'ITEM-' || lpad(i::text, 6, '0'), 100, now(), 1999, 'USD'
  FROM unnest(ARRAY['VendorA', 'VendorB']) v, generate_series(1, 2000) i;
INSERT INTO vendor_stock (vendor_id, sku, product_id, reported, as_of, price_minor, currency)
SELECT 'VendorC', 'ITEM-c-' || lpad(i::text, 6, '0'), 'ITEM-' || lpad(i::text, 6, '0'), 100, now(), 1999, 'USD'
  FROM generate_series(1, 100000) i;
VACUUM ANALYZE vendor_stock;
SQL
for range in "10001 20000" "30001 31000"; do
  set -- $range
  echo "rows $1..$2 (first INSERT, then UPDATE, twice):"
  psql -v ON_ERROR_STOP=1 -v lo="$1" -v hi="$2" "$url" -f benches/sql/sync_merge.sql 2>&1 |
    grep -E 'Merge Join|Execution Time'
done
