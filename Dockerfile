# syntax=docker/dockerfile:1
# Build: docker build -t outpost .
# Run:   docker run -p 8000:8000 -v outpost_data:/data outpost

FROM rust:1-bookworm AS build
# libclang: rusqlite's pre-update hook bindings are generated with bindgen.
RUN apt-get update && apt-get install -y --no-install-recommends libclang-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && cargo build --release --locked || true
COPY . .
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin outpost

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data outpost \
    && mkdir -p /data && chown outpost /data
COPY --from=build /src/target/release/outpost /usr/local/bin/outpost
USER outpost
ENV OUTPOST_HTTP=0.0.0.0:8000 \
    OUTPOST_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000
STOPSIGNAL SIGTERM
ENTRYPOINT ["outpost"]
CMD ["serve"]
