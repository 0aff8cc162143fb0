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
# GET /healthz over plain HTTP on DEALERSYNC_LISTEN's port, with bash's /dev/tcp (the
# image has no curl): unhealthy once the sync engine has stopped. Change the port with
# DEALERSYNC_LISTEN, not --listen. With the relay's own TLS inside the container the
# probe cannot speak to it: run with --no-healthcheck, or terminate TLS in front.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${DEALERSYNC_LISTEN##*:} && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r -t 4 status <&3 && [[ $status == *' 200 '* ]]"]
# SIGTERM: stop accepting, finish in-flight commits, exit 0 (docs/operations.md).
STOPSIGNAL SIGTERM
ENTRYPOINT ["dealersync-server"]
CMD ["serve"]
