# Order Aggregator binaries, for machines with Docker (see docker-compose.yml).
#   docker build -t order-aggregator .
# Binaries in the image: aggregator (api, worker, relay, sweeper, sync), stock-sync,
# mock-vendors, aggregator-migrate, aggregator-api.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --workspace --bins \
 && mkdir /out \
 && cp target/release/aggregator target/release/stock-sync target/release/mock-vendors \
       target/release/aggregator-migrate target/release/aggregator-api /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /app aggregator
COPY --from=build /out/ /usr/local/bin/
WORKDIR /app
USER aggregator
ENV AGGREGATOR_LOG_FORMAT=json
EXPOSE 3000
# Every part in one process; docker-compose.yml runs the parts separately.
CMD ["aggregator", "all"]
