# The relay (and the field CLI) in a container: built in one stage, run in a slim one
# as an unprivileged user, data in a volume. See docs/operations.md, "Installing".
#   docker build -t dealersync .
#   docker run -d --name dealersync -p 3030:3030 -v dealersync-data:/var/lib/dealersync dealersync
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p dealersync-server -p dealersync-cli \
 && strip target/release/dealersync-server target/release/dealersync

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/dealersync \
      --shell /usr/sbin/nologin dealersync \
 && install -d -o dealersync -g dealersync -m 0700 /var/lib/dealersync
COPY --from=build /src/target/release/dealersync-server /src/target/release/dealersync /usr/local/bin/
USER dealersync
VOLUME /var/lib/dealersync
ENV DEALERSYNC_DATA_DIR=/var/lib/dealersync \
    DEALERSYNC_LISTEN=0.0.0.0:3030 \
    DEALERSYNC_LOG_JSON=true
EXPOSE 3030
# SIGTERM: stop accepting, finish in-flight commits, exit 0 (docs/operations.md).
STOPSIGNAL SIGTERM
ENTRYPOINT ["dealersync-server"]
CMD ["serve"]
