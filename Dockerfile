# syntax=docker/dockerfile:1
# The importer's image: built with the locked dependencies on the toolchain
# Cargo.toml's rust-version names, run as a non-root user on a small Debian.
#   docker build -t sis-importer:0.1.0 .
# docs/operating.md (Deploying) says what each choice rests on.

# The oldest Rust the locked dependencies build with (Cargo.toml's
# rust-version); tests/deploy.rs keeps the two equal.
ARG RUST_VERSION=1.89

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target caches survive between builds; the binary is
# copied out of the cache mount inside the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin sis-importer \
 && install -D -m 0755 target/release/sis-importer /out/sis-importer

# Same Debian release as the build stage, so the binary finds the glibc it
# was linked against.
FROM debian:bookworm-slim
# ca-certificates: the system trust store for the TLS of Redis and NATS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 sis-importer \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin sis-importer
COPY --from=build /out/sis-importer /usr/local/bin/sis-importer
# Numeric, so Kubernetes' runAsNonRoot can check it without /etc/passwd.
USER 10001:10001
# The admin HTTP port (PORT, default 3002): /healthz, /readyz, /metrics.
EXPOSE 3002
# bash's /dev/tcp instead of curl: bash is already in the slim image, curl
# and its libraries would add about 10 MB for one GET. Exit 0 only on
# HTTP 200 from /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-3002} && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && IFS= read -r -t 4 status <&3 && [[ $status == 'HTTP/1.1 200'* ]]"]
# SIGTERM drains for shutdown_grace_secs, then exits 0; the importer
# handles it as PID 1 itself.
STOPSIGNAL SIGTERM
ENTRYPOINT ["sis-importer"]
CMD ["run"]
