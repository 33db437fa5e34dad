# syntax=docker/dockerfile:1
# Order Aggregator binaries, for machines with Docker (see docker-compose.yml).
#   docker build -t order-aggregator .
# Binaries in the image: aggregator (api, worker, relay, sweeper, sync), stock-sync,
# mock-vendors, aggregator-migrate, aggregator-api.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The registry and the target directory live in BuildKit caches, so a rebuild after a
# source change compiles only what changed, not every dependency again.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --workspace --bins \
 && mkdir /out \
 && cp target/release/aggregator target/release/stock-sync target/release/mock-vendors \
       target/release/aggregator-migrate target/release/aggregator-api /out/

FROM debian:bookworm-slim
# curl answers the health check; the home directory is where the processes write (their
# log files go to ./logs by default), so it belongs to the user they run as.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /app --shell /usr/sbin/nologin aggregator \
 && mkdir -p /app/logs \
 && chown -R aggregator:aggregator /app
COPY --from=build /out/ /usr/local/bin/
WORKDIR /app
USER aggregator
ENV AGGREGATOR_LOG_FORMAT=json \
    AGGREGATOR_LOG_DIR=/app/logs
EXPOSE 3000
# The API's liveness; containers without the API (workers, mock vendors) set their own
# in docker-compose.yml.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:3000/health/live || exit 1
# Every part in one process; docker-compose.yml runs the parts separately.
CMD ["aggregator", "all"]
