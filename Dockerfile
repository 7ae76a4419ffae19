# Sluice: multi-stage build on Debian 12.
#   docker build -t sluice .
#   docker run -p 4567:4567 -v sluice-data:/data \
#     -v "$PWD/credentials:/etc/sluice/credentials:ro" sluice
# With a credentials file mounted at /etc/sluice/credentials every request
# must be signed (AWS SigV4) or carry one of its bearer tokens
# (gateway/docker/entrypoint.sh); without one the gateway is open to anyone
# who reaches the published port, and says so in its log.
FROM debian:12-slim AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libevent-dev libnghttp2-dev libjansson-dev libssl-dev \
      libhttp-parser-dev libcbor-dev libdeflate-dev libnats-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY store store
COPY gateway gateway
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF -DSLUICE_BENCH=OFF \
    && cmake --build build -j"$(nproc)" --target sluice \
    && install -m 0755 build/gateway/sluice /usr/local/bin/sluice

FROM debian:12-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libevent-core-2.1-7 libnghttp2-14 libjansson4 \
      libssl3 libhttp-parser2.9 libcbor0.8 libdeflate0 libnats3.4 curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin sluice \
    && mkdir -p /data && chown sluice:sluice /data
COPY --from=build /usr/local/bin/sluice /usr/local/bin/sluice
COPY gateway/docker/entrypoint.sh /usr/local/bin/sluice-entrypoint
USER sluice
VOLUME ["/data"]
EXPOSE 4567
ENV SLUICE_LISTEN=0.0.0.0:4567 SLUICE_DATA_DIR=/data
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:4567/healthz || exit 1
# SIGTERM drains: stop accepting, finish in-flight requests, GOAWAY, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/bin/sh", "/usr/local/bin/sluice-entrypoint"]
