# syntax=docker/dockerfile:1
# Loquat in a container: a release build in the official Rust image, then only the binary on a
# slim Debian with CA certificates, running as an unprivileged user with its data in /data.
#   docker build -t loquat .
#   docker run -p 3210:3210 -v loquat-data:/data loquat

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# The registry and target folders are build caches (BuildKit); the binary is copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p loquat \
    && install -m 0755 target/release/loquat /usr/local/bin/loquat

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home loquat \
    && mkdir -p /data \
    && chown loquat:loquat /data
COPY --from=builder /usr/local/bin/loquat /usr/local/bin/loquat
ENV LOQUAT_DATA_DIR=/data \
    LOQUAT_LISTEN=0.0.0.0:3210
VOLUME /data
WORKDIR /data
EXPOSE 3210
USER loquat
# `loquat healthcheck` asks this container's /readyz: no curl needed in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["loquat", "healthcheck"]
ENTRYPOINT ["loquat"]
CMD ["serve"]
