#!/usr/bin/env bash
# Makes a Docker engine and the image `redis:7.0` (Testcontainers.Redis's default) available for the Redis tests.
# Idempotent: installs docker.io when missing, starts dockerd when it is not running, and builds the image once with
# `docker import` from this machine's redis-server and redis-cli (no image registry is reachable here).
# Always exits 0: where Docker cannot run, it says so on one line and the tests fall back to redis-server processes.
set -uo pipefail

say() { echo "docker.sh: $*"; }
unavailable() {
  say "Docker is unavailable ($1); the Redis tests will use local redis-server processes instead."
  exit 0
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi; }

apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 && return 0
  as_root apt-get update -qq >/dev/null 2>&1 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

# The image is built from the host's binaries.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  apt_install redis-server redis-tools || unavailable "redis-server could not be installed"
fi

if ! command -v dockerd >/dev/null 2>&1; then
  say "installing docker.io"
  apt_install docker.io || unavailable "apt-get install docker.io failed"
fi

# Prefer the distribution's client, which speaks the engine's API version (1.41).
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=$(command -v docker) || unavailable "no docker client"

if ! as_root "$DOCKER" info >/dev/null 2>&1; then
  say "starting dockerd (log: /var/log/dockerd.log)"
  as_root sh -c 'nohup setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &' || unavailable "dockerd could not be started"
  for _ in $(seq 1 60); do
    as_root "$DOCKER" info >/dev/null 2>&1 && break
    sleep 0.5
  done
  as_root "$DOCKER" info >/dev/null 2>&1 || unavailable "dockerd did not answer within 30 s (see /var/log/dockerd.log)"
fi

if ! as_root "$DOCKER" image inspect redis:7.0 >/dev/null 2>&1; then
  say "building the image redis:7.0 from $(redis-server --version | cut -d' ' -f1-3)"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/usr/bin" "$root/tmp" "$root/data" "$root/etc"
  cp "$(command -v redis-server)" "$(command -v redis-cli)" "$root/usr/bin/"
  # Every shared library the two binaries load, at the same path, and the loader itself.
  for lib in $(ldd "$(command -v redis-server)" "$(command -v redis-cli)" | grep -oE '/[^ ]+\.so[^ ]*' | sort -u); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  chmod 1777 "$root/tmp"
  tar -C "$root" -c . | as_root "$DOCKER" import \
    --change 'ENTRYPOINT ["/usr/bin/redis-server"]' \
    --change 'CMD ["--protected-mode", "no"]' \
    --change 'ENV PATH=/usr/bin:/bin' \
    --change 'WORKDIR /data' \
    --change 'EXPOSE 6379' \
    - redis:7.0 >/dev/null || unavailable "docker import of redis:7.0 failed"
fi

say "Docker $(as_root "$DOCKER" version --format '{{.Server.Version}}' 2>/dev/null) is running with the image redis:7.0; the Redis tests will use containers."
