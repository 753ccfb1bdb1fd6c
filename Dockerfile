# sitehost's image: the server with Hugo extended (LibSass, cgo), git and
# Dart Sass. Unbuilt where it was written (no container engine there): keep
# it conventional. Pin the bases by digest in your registry mirror.
#
#   docker build -t sitehost .
#   docker run --read-only --tmpfs /tmp -v sitehost-data:/data -v ./sites.yaml:/etc/sitehost/sites.yaml:ro \
#     -p 8080:8080 -p 9090:9090 sitehost serve --role all
#
# data_dir must be /data (a volume) and /tmp writable (a tmpfs, an emptyDir):
# the root file system may then be read-only.

ARG GO_VERSION=1.26.0
ARG DEBIAN_VERSION=trixie-20251117

FROM golang:${GO_VERSION}-trixie AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -tags extended needs cgo (LibSass), as the README says.
RUN CGO_ENABLED=1 go build -tags extended -trimpath -ldflags "-s -w" -o /out/sitehost ./cmd/sitehost

# Dart Sass for transpiler dartsass, the standalone build npm ships in
# sass-embedded-linux-x64 (as .ci/run installs it), checked against the
# registry's sha512 integrity before it is unpacked. x86-64 only.
FROM debian:${DEBIAN_VERSION}-slim AS sass
ARG DART_SASS_VERSION=1.108.2
ARG DART_SASS_SHA512=f5234c1886337dd3007e53e534b42ba3d80859badbad289bc1f7dab456849a330f047ab2da037083b56ecc344707281b4aab2bb2a7e1a246067210b2cc2648f5
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN curl -fsSL -o /tmp/sass.tgz \
      "https://registry.npmjs.org/sass-embedded-linux-x64/-/sass-embedded-linux-x64-${DART_SASS_VERSION}.tgz" \
 && echo "${DART_SASS_SHA512}  /tmp/sass.tgz" | sha512sum -c - \
 && mkdir -p /opt/sass && tar -xzf /tmp/sass.tgz -C /opt/sass --strip-components=1 \
 && /opt/sass/dart-sass/sass --version

FROM debian:${DEBIAN_VERSION}-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates git openssh-client tzdata libstdc++6 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 sitehost \
 && useradd --system --uid 65532 --gid sitehost --home-dir /data --shell /usr/sbin/nologin sitehost \
 && mkdir -p /data /etc/sitehost && chown sitehost:sitehost /data
COPY --from=sass /opt/sass/dart-sass /opt/dart-sass
COPY --from=build /out/sitehost /usr/local/bin/sitehost
# Dart Sass on PATH is found as "sass" (server.build.dart_sass may name it).
ENV PATH=/opt/dart-sass:$PATH \
    HOME=/data \
    XDG_CACHE_HOME=/data/cache
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080 8443 9090
# The admin listener must be reachable inside the container: server.admin
# ":9090" (the probe asks 127.0.0.1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["sitehost", "healthcheck", "--addr", "127.0.0.1:9090", "--path", "/healthz"]
# SIGTERM: /readyz fails at once, serving goes on for server.shutdown_delay, then it drains.
STOPSIGNAL SIGTERM
ENTRYPOINT ["sitehost"]
CMD ["serve", "-c", "/etc/sitehost/sites.yaml"]
