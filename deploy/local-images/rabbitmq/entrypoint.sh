#!/bin/sh
# Writes the default user and the listeners into the broker's configuration, then runs
# the command as the rabbitmq user.
set -eu

if [ "${1:-}" = rabbitmq-server ] && [ "$(id -u)" = 0 ]; then
  conf=/etc/rabbitmq/conf.d/10-defaults.conf
  {
    echo "loopback_users.guest = false"
    echo "listeners.tcp.default = 5672"
    echo "management.tcp.port = 15672"
    if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then echo "default_user = $RABBITMQ_DEFAULT_USER"; fi
    if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ]; then echo "default_pass = $RABBITMQ_DEFAULT_PASS"; fi
  } >"$conf"
  if [ -n "${RABBITMQ_ERLANG_COOKIE:-}" ]; then
    printf '%s' "$RABBITMQ_ERLANG_COOKIE" >/var/lib/rabbitmq/.erlang.cookie
    chmod 600 /var/lib/rabbitmq/.erlang.cookie
  fi
  chown -R rabbitmq:rabbitmq /etc/rabbitmq /var/lib/rabbitmq
  # Debian's /usr/sbin/rabbitmq-server sends the broker's output to a file under
  # /var/log; the script it wraps logs where RABBITMQ_LOGS says (standard output).
  shift
  exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups \
    /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi

exec "$@"
