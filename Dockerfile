# syntax=docker/dockerfile:1.7
#
# ehr-mcp container image: a release build in the official Rust image, then only the binary on a
# distroless glibc base (no shell, no package manager), running as the unprivileged `nonroot` user.
#
#   docker build -t ehr-mcp .
#   docker run -d --name ehr-mcp -p 7777:7777 -v ehr-data:/data \
#       -e EHR_MCP_PUBLIC_URL=https://ehr.example.org ehr-mcp serve --demo
#
# The SQLite database (and the demo credentials file) live in the /data volume. For PostgreSQL set
# DATABASE_URL=postgres://user:password@host/db. See docs/DEPLOYMENT.md.

ARG RUST_IMAGE=rust:1-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /build
# Every target in Cargo.toml must exist for cargo to read the manifest; only src/ and migrations/ are
# compiled into the binary (migrations are embedded).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY bench ./bench
COPY tests ./tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin ehr-mcp \
    && install -D -m 0755 target/release/ehr-mcp /out/usr/local/bin/ehr-mcp \
    && install -d -m 0750 /out/data

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/usr/local/bin/ehr-mcp /usr/local/bin/ehr-mcp
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
ENV SERVER_HOST=0.0.0.0 \
    SERVER_PORT=7777 \
    DATABASE_URL=sqlite:///data/ehr_database.db \
    EHR_MCP_CREDENTIALS_FILE=/data/oauth_clients_credentials.json \
    EHR_MCP_LOG_FORMAT=json \
    LOG_LEVEL=info
EXPOSE 7777
VOLUME ["/data"]
# No curl in the image: the binary probes its own /healthz (exit 0 healthy, 1 not).
HEALTHCHECK --interval=30s --timeout=6s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/ehr-mcp", "healthcheck", "--timeout-seconds", "5"]
# SIGTERM starts the graceful shutdown; give it more than EHR_MCP_SHUTDOWN_GRACE_SECONDS
# (`docker stop --time 30`, Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ehr-mcp"]
CMD ["serve"]
