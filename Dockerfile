# labcat: build with the Rust toolchain, run on a slim Debian without it.
# The image has no PostgreSQL: give it a server with DATABASE_URL (see docker-compose.yml).

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin labcat
COPY --from=builder /src/target/release/labcat /usr/local/bin/labcat
USER labcat
ENV LABCAT__SERVER__ADDR=0.0.0.0:8080
EXPOSE 8080
CMD ["labcat", "serve"]
