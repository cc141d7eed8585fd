# sessiond container image: Debian bookworm-slim, non-root, HEALTHCHECK on
# /healthz. The build runs the same steps as CI and `make deb`
# (scripts/install-deps.sh, make), and the image installs that Debian
# package, so its runtime libraries are exactly the package's Depends.
#
#   docker build --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) -t sessiond .
#   docker run -p 8080:8080 -p 9090:9090 -e SESSIOND_UPSTREAM=http://app:3000 \
#              -e SESSIOND_SECRET=$(sessiond gen-secret) sessiond
#
# Configuration: packaging/docker/sessiond.yaml, read from the environment;
# mount your own at /etc/sessiond/sessiond.yaml for more.

# --- build ------------------------------------------------------------------------
FROM debian:bookworm-slim AS build
WORKDIR /src
# The dependencies first: this layer stays cached while the sources change.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh build deb
COPY . .
# No .git in the build context (.dockerignore): the commit comes as an argument.
ARG GIT_COMMIT=unknown
RUN make deb GIT_COMMIT="${GIT_COMMIT}" && cp build/sessiond_*.deb /sessiond.deb

# --- run --------------------------------------------------------------------------
FROM debian:bookworm-slim
COPY --from=build /sessiond.deb /tmp/sessiond.deb
# apt resolves the package's Depends; curl is for the HEALTHCHECK. The key
# postinst made is removed: an image must not carry a secret, the container
# gets SESSIOND_SECRET instead.
RUN apt-get update \
 && apt-get install -y --no-install-recommends /tmp/sessiond.deb curl \
 && rm -rf /var/lib/apt/lists/* /tmp/sessiond.deb /etc/sessiond/secret
COPY packaging/docker/sessiond.yaml /etc/sessiond/sessiond.yaml
USER sessiond
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9090/healthz"]
# SIGTERM drains in-flight requests (timeouts.shutdown), then exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/sessiond"]
CMD ["-c", "/etc/sessiond/sessiond.yaml"]
