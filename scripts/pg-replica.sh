#!/usr/bin/env bash
# A PostgreSQL streaming replica of the local server, for the read-replica tests.
#
#   scripts/pg-replica.sh start DIR PORT   copies the primary (127.0.0.1:5432) with
#                                          pg_basebackup into DIR and starts it as a hot
#                                          standby on 127.0.0.1:PORT; prints its PID
#   scripts/pg-replica.sh stop DIR         stops the replica started in DIR (by its PID)
#                                          and deletes DIR
#
# Needs the primary to accept replication connections from 127.0.0.1 (`.ci/run` adds
# `host replication all 127.0.0.1/32 trust` to pg_hba.conf) and, when run as root, the
# `postgres` system user to own the copy. PRIMARY_PORT overrides 5432. Exits with 3 when
# the host lacks what a replica needs (server binaries, replication rights).
set -euo pipefail

primary_port=${PRIMARY_PORT:-5432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
# Exit status 3: this host lacks what a replica needs (the tests skip on it).
[ -n "$bin" ] || { echo "pg-replica: no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 3; }

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  chmod 700 "$dir"
  if ! as_postgres "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres \
      -D "$dir/data" -R -X stream -c fast 2>"$dir/basebackup.log"; then
    if grep -q 'pg_hba.conf' "$dir/basebackup.log"; then
      echo "pg-replica: the primary refuses replication connections from 127.0.0.1 (pg_hba.conf needs 'host replication all 127.0.0.1/32 trust'):" >&2
      cat "$dir/basebackup.log" >&2
      exit 3
    fi
    echo "pg-replica: pg_basebackup failed:" >&2
    cat "$dir/basebackup.log" >&2
    exit 1
  fi
  # Debian keeps the configuration outside the data directory: give the copy its own.
  as_postgres sh -c "printf '%s\n' \
    \"listen_addresses = '127.0.0.1'\" \
    \"port = $port\" \
    \"unix_socket_directories = '$dir'\" \
    \"hot_standby = on\" \
    \"hot_standby_feedback = on\" \
    \"max_connections = 100\" \
    \"shared_buffers = 32MB\" \
    > '$dir/data/postgresql.conf'
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' > '$dir/data/pg_hba.conf'
    : > '$dir/data/pg_ident.conf'"
  as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
  head -n 1 "$dir/data/postmaster.pid"
}

stop() {
  local dir=$1
  if [ -f "$dir/data/postmaster.pid" ]; then
    local pid
    pid=$(head -n 1 "$dir/data/postmaster.pid")
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) [ $# = 3 ] || { echo "usage: $0 start DIR PORT" >&2; exit 2; }; start "$2" "$3" ;;
  stop) [ $# = 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$2" ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
