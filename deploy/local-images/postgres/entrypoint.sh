#!/bin/sh
# Makes a database cluster in PGDATA on first start (as the official image does), then
# runs the command as the postgres user.
set -eu

if [ "${1:-}" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  auth=${POSTGRES_HOST_AUTH_METHOD:-}
  if [ -z "$auth" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
      echo "error: set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without one" >&2
      exit 1
    fi
    auth=scram-sha-256
  fi
  pwfile=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
  if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host="$auth" >/dev/null
  else
    initdb --username="$user" --auth-local=trust --auth-host="$auth" >/dev/null
  fi
  rm -f "$pwfile"
  printf 'host all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
  printf "listen_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
  # As the official image does: a server on the socket only for the set-up, then the
  # real one (pg_ctl sends the first server's log to standard output, the real one logs to
  # standard error: "ready to accept connections" is on each once).
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  db=${POSTGRES_DB:-$user}
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 --username "$user" --dbname postgres \
      -c "CREATE DATABASE \"$db\";" >/dev/null
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
