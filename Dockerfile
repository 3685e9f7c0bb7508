# pgqueue as a container: a static musl binary on a distroless base, run as non-root.
#
#   docker build -t pgqueue .
#   docker run -p 8080:8080 -e DATABASE_URL=postgres://… pgqueue
#
# See docs/deploy.md (health checks, migrations, PgBouncer, environment variables).

FROM rust:1-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl -p pgqueue-cli \
 && cp target/x86_64-unknown-linux-musl/release/pgqueue /pgqueue

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /pgqueue /usr/local/bin/pgqueue
USER nonroot:nonroot
EXPOSE 8080
ENV PGQUEUE_ADDR=0.0.0.0:8080 \
    PGQUEUE_LOG_FORMAT=json
# Distroless has no shell or curl: the orchestrator probes GET /healthz and /readyz
# (docs/deploy.md); `docker run --health-cmd` needs an image with a client in it.
ENTRYPOINT ["/usr/local/bin/pgqueue"]
CMD ["run"]
