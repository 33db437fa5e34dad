#!/usr/bin/env bash
# Builds, from Debian's packages, the images the compose test and the testcontainers
# suites run on a machine that cannot pull images (no registry reachable):
#
#   aggregator-local/debian:bookworm   a minbase Debian root (debootstrap, docker import)
#   aggregator-local/postgres:15       PostgreSQL, started as the official postgres image
#   aggregator-local/rabbitmq:3        RabbitMQ with management, as rabbitmq:*-management
#   aggregator-local/redis:7           Redis, as the official redis image
#   aggregator-local/prometheus:2      Prometheus, as prom/prometheus
#
# Each image carries the digest of its recipe (deploy/local-images/NAME) as a label; an
# image whose label matches is kept, so a second run takes seconds. Images are only ever
# tagged under aggregator-local/ (AGGREGATOR_LOCAL_IMAGE_PREFIX), never under an official
# name. It prints the variables that point compose and the tests at them:
#
#   eval "$(bash scripts/local-images.sh)"
#
# Needs a running Docker engine, and root for debootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=${AGGREGATOR_LOCAL_IMAGE_PREFIX:-aggregator-local}
suite=bookworm
recipes=deploy/local-images
say() { printf '[local-images] +%ss %s\n' "$SECONDS" "$*" >&2; }

# The Debian mirror this machine's apt already uses (no other is reachable here).
mirror() {
  local uri
  uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

label_of() { docker image inspect --format '{{ index .Config.Labels "org.aggregator.recipe" }}' "$1" 2>/dev/null || true; }

base=$prefix/debian:$suite
base_recipe=$(printf 'debootstrap --variant=minbase %s %s' "$suite" "$(mirror)" | sha256sum | cut -c1-16)
if [ "$(label_of "$base")" = "$base_recipe" ]; then
  say "$base is built"
else
  say "building $base with debootstrap from $(mirror)"
  command -v debootstrap >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
  }
  root=$(mktemp -d /tmp/aggregator-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase "$suite" "$root" "$(mirror)" >/dev/null
  # Small, as slim images are: no documentation, no package lists kept.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
    >"$root/etc/dpkg/dpkg.cfg.d/01-slim"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/01-slim"
  tar -C "$root" -c . | docker import \
    --change "LABEL org.aggregator.recipe=$base_recipe" \
    --change 'CMD ["bash"]' - "$base" >/dev/null
  rm -rf "$root"
  trap - EXIT
  say "$base imported"
fi

build() {
  local name=$1 tag=$2 image recipe
  image=$prefix/$name:$tag
  recipe=$( (echo "$base_recipe"; cat "$recipes/$name"/*) | sha256sum | cut -c1-16)
  if [ "$(label_of "$image")" = "$recipe" ]; then
    say "$image is built"
    return 0
  fi
  say "building $image"
  docker build --quiet --build-arg "BASE=$base" --label "org.aggregator.recipe=$recipe" \
    -t "$image" "$recipes/$name" >/dev/null
  say "$image built"
}

build postgres 15
build rabbitmq 3
build redis 7
build prometheus 2

echo "export AGGREGATOR_POSTGRES_IMAGE=$prefix/postgres:15"
echo "export AGGREGATOR_RABBITMQ_IMAGE=$prefix/rabbitmq:3"
echo "export AGGREGATOR_REDIS_IMAGE=$prefix/redis:7"
echo "export AGGREGATOR_PROMETHEUS_IMAGE=$prefix/prometheus:2"
echo "export AGGREGATOR_BASE_IMAGE=$base"
