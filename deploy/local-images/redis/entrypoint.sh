#!/bin/sh
# Runs redis-server as the redis user; without a configuration file it listens on every
# interface with protected mode off, as the official image does.
set -eu

if [ "${1#-}" != "$1" ]; then
  set -- redis-server "$@"
fi

if [ "${1:-}" = redis-server ]; then
  case "${2:-}" in
    *.conf) ;;
    *) shift; set -- redis-server --protected-mode no "$@" ;;
  esac
  if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi

exec "$@"
