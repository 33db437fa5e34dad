# Order Aggregator binaries: aggregator (api, worker, relay, sweeper, sync), stock-sync,
# mock-vendors, aggregator-migrate, aggregator-api. Two ways in, one runtime stage:
#
#   From source (any machine that can pull rust:1.95-bookworm and debian:bookworm-slim):
#     docker build -t order-aggregator .
#
#   From binaries built on the host (machines that cannot pull images; CI does this):
#     mkdir -p /tmp/ctx/bin && cp target/debug/{aggregator,stock-sync,mock-vendors,aggregator-migrate,aggregator-api} /tmp/ctx/bin/
#     docker build -f Dockerfile --target from-host \
#       --build-arg RUNTIME_BASE=aggregator-local/debian:bookworm -t order-aggregator /tmp/ctx
#   (scripts/compose-test.sh does exactly this; scripts/local-images.sh makes the base.)
#
# Run it: the API listens on 0.0.0.0:3000 inside the container, so it asks for API keys
# (protected mode), and it needs its services and vendors:
#   docker run -p 3000:3000 -e AGGREGATOR_API_KEYS=admin:<32+ chars>,client:c1:<key> \
#     -e AGGREGATOR_VENDORS=VendorA=http://vendor-a:3001 -e DATABASE_URL=... order-aggregator
#
# The stages are ordered so that a builder stopping at `--target from-host` never reads
# the from-source stage (the classic builder runs every stage before its target).

ARG RUNTIME_BASE=debian:bookworm-slim

# What every image runs on: curl for the health check, a user of its own whose home is
# the working directory, logs as JSON on standard output only.
FROM ${RUNTIME_BASE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /app --shell /usr/sbin/nologin aggregator \
 && chown -R aggregator:aggregator /app
WORKDIR /app
ENV AGGREGATOR_LOG_FORMAT=json \
    AGGREGATOR_LOG_DIR=none \
    AGGREGATOR_API_ADDR=0.0.0.0:3000
EXPOSE 3000
# The API's liveness; containers without the API (workers, mock vendors) set their own
# in docker-compose.yml.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:3000/health/live || exit 1
USER aggregator
# Every part in one process; docker-compose.yml runs the parts separately.
CMD ["aggregator", "all"]

# Binaries compiled on the host: the build context holds them under bin/.
FROM runtime AS from-host
COPY bin/ /usr/local/bin/

# Binaries compiled from source. The registry and the target directory live in BuildKit
# caches, so a rebuild after a source change compiles only what changed.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --workspace --bins \
 && mkdir /out \
 && cp target/release/aggregator target/release/stock-sync target/release/mock-vendors \
       target/release/aggregator-migrate target/release/aggregator-api /out/

FROM runtime
COPY --from=build /out/ /usr/local/bin/
