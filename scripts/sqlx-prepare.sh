#!/usr/bin/env bash
# Regenerates aggregator-postgres/.sqlx, the data sqlx's checked queries are built from
# when SQLX_OFFLINE=true (the default here, see .cargo/config.toml). Run it after
# changing a query or a migration, and commit the result.
#
# Needs psql and a PostgreSQL server (ADMIN_URL, default the local one with trust auth).
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
database="aggregator_sqlx_prepare_$$"
base_url=${admin_url%/*}
trap 'psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null' EXIT

psql -q "$admin_url" -c "CREATE DATABASE $database"
for migration in aggregator-postgres/migrations/*.sql; do
  psql -q -v ON_ERROR_STOP=1 "$base_url/$database" -f "$migration"
done

rm -rf aggregator-postgres/.sqlx
mkdir -p aggregator-postgres/.sqlx
# Touch the sources so every query macro runs again and writes its data.
find aggregator-postgres/src -name '*.rs' -exec touch {} +
SQLX_OFFLINE=false \
DATABASE_URL="$base_url/$database" \
SQLX_OFFLINE_DIR="$PWD/aggregator-postgres/.sqlx" \
  cargo check -p aggregator-postgres --all-targets --quiet
echo "wrote $(ls aggregator-postgres/.sqlx | wc -l) query files to aggregator-postgres/.sqlx"
