# syntax=docker/dockerfile:1.7
# Minipay images: one Dockerfile, one target per binary.
#
#   docker build --target order-svc       -t minipay/order-svc:0.1.0 .
#   docker build --target pay-gateway-svc -t minipay/pay-gateway-svc:0.1.0 .
#   docker build --target notify-svc      -t minipay/notify-svc:0.1.0 .
#   docker build --target wechatpay-sim   -t minipay/wechatpay-sim:0.1.0 .
#
# The builder compiles the four release binaries once; BuildKit cache mounts keep cargo's
# registry and target directory between builds, so a source change recompiles only the
# workspace crates, never the dependencies.
#
# Runtime base: debian-slim with ca-certificates (WeChat's HTTPS hosts) and tzdata (Beijing
# time, TZ=Asia/Shanghai), nothing else added. We chose it over distroless so that the image
# can carry its own health probe without curl: /usr/local/bin/healthcheck uses bash's
# /dev/tcp to GET /healthz on the ops port (the services have no --health flag). Docker and
# docker compose use that HEALTHCHECK; Kubernetes ignores it and probes the ops port with
# httpGet (k8s/base). The preStop hook uses /bin/sleep from the same base.
#
# Runs as uid/gid 10001 (numeric, so runAsNonRoot can verify it); writes nothing to disk, so
# it runs with a read-only root filesystem. SIGTERM starts the graceful shutdown.

# The builder and the runtime share the Debian release (bookworm), hence glibc.
FROM rust:1.95.0-slim-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
        --bin order-svc --bin pay-gateway-svc --bin notify-svc --bin wechatpay-sim \
    && mkdir -p /out \
    && cp target/release/order-svc target/release/pay-gateway-svc \
          target/release/notify-svc target/release/wechatpay-sim /out/

FROM debian:12.12-slim AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.vendor="Minipay" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/minipay/minipay" \
      org.opencontainers.image.documentation="https://github.com/minipay/minipay#deploying"
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 minipay \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin minipay
COPY --chmod=0755 deploy/docker/healthcheck.sh /usr/local/bin/healthcheck
ENV TZ=Asia/Shanghai \
    RUST_LOG=info
USER 10001:10001
WORKDIR /
STOPSIGNAL SIGTERM

FROM runtime AS wechatpay-sim
LABEL org.opencontainers.image.title="wechatpay-sim" \
      org.opencontainers.image.description="WeChat Pay v2 simulator (development and tests only)"
COPY --from=builder /out/wechatpay-sim /usr/local/bin/wechatpay-sim
ENV SIM_LISTEN=0.0.0.0:8090
EXPOSE 8090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/healthcheck", "8090", "/sim/v1/health"]
ENTRYPOINT ["/usr/local/bin/wechatpay-sim"]

FROM runtime AS pay-gateway-svc
LABEL org.opencontainers.image.title="pay-gateway-svc" \
      org.opencontainers.image.description="Minipay pay-gateway-svc: the only service calling WeChat Pay (gRPC)"
COPY --from=builder /out/pay-gateway-svc /usr/local/bin/pay-gateway-svc
# gRPC, ops (/healthz /readyz /metrics)
EXPOSE 50052 8082
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/healthcheck", "8082"]
ENTRYPOINT ["/usr/local/bin/pay-gateway-svc"]

FROM runtime AS notify-svc
LABEL org.opencontainers.image.title="notify-svc" \
      org.opencontainers.image.description="Minipay notify-svc: WeChat Pay notifications to RabbitMQ"
COPY --from=builder /out/notify-svc /usr/local/bin/notify-svc
# WeChat's callbacks, ops
EXPOSE 8081 9081
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/healthcheck", "9081"]
ENTRYPOINT ["/usr/local/bin/notify-svc"]

# Last, so that a plain `docker build .` gives order-svc.
FROM runtime AS order-svc
LABEL org.opencontainers.image.title="order-svc" \
      org.opencontainers.image.description="Minipay order-svc: the Mini Program's HTTP API and orders"
COPY --from=builder /out/order-svc /usr/local/bin/order-svc
# public HTTP, gRPC, ops
EXPOSE 8080 50051 9080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/healthcheck", "9080"]
ENTRYPOINT ["/usr/local/bin/order-svc"]
