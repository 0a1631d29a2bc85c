#!/usr/bin/env bash
# Build the images the integration tests run, idempotently (a second run is all cache hits
# and leaves the same image IDs):
#   odoo-ai-test/postgres:15                 tests/images/postgres (Debian PostgreSQL 15)
#   odoo-ai-test/nginx:1                     tests/images/nginx    (Debian nginx)
#   odoo-ai-test/mailcatcher:1               tests/images/mailcatcher (a TEST mail catcher from Debian's
#                                            python3-aiosmtpd: SMTP 1025, Mailpit's JSON list on 8025)
#   odoo-ai-test/odoo-web:standin            docker/Dockerfile --target web,           stand-in Odoo, addons "ok"
#   odoo-ai-test/odoo-script-runner:standin  docker/Dockerfile --target script-runner, stand-in Odoo, addons "ok"
# and, for each extra scenario S given with --scenario S (repeatable, or "all"),
#   odoo-ai-test/odoo-web:standin-S and odoo-ai-test/odoo-script-runner:standin-S
# from tests/fixtures/standin-addons/S (ok_v2, update_fails, slow_update, never_healthy, crash,
# tests_pass, tests_fail, tests_crash).
#
# With --real, also REAL Odoo 18.0 Community images, for each scenario S under
# tests/fixtures/real-addons/ (base, v1, v2, update_fails, import_error, tests):
#   odoo-ai-test/odoo-web:real-S and odoo-ai-test/odoo-script-runner:real-S
# built from the trimmed Odoo source tarball (ODOO_AI_ODOO18_TARBALL, default
# ../shared/odoo18/odoo-18.0-community-core.tar.gz beside the repository; its sha256 is checked),
# unpacked once into the git-ignored vendor/odoo18-test/ (ODOO_LOCAL_SRC=vendor/odoo18-test/odoo-18.0).
#
# The Odoo images go through the REAL docker/Dockerfile; every input is a build arg or a
# secret, exactly what `odoo-ai build` passes. Prints one line per image on stdout:
#   built <tag> <image id> <seconds>s
# Environment: ODOO_AI_BASE_IMAGE (default odoo-ai-test/debian:bookworm),
#   ODOO_AI_BUILD_CA (CA bundle given as the `ca` secret; default the host bundle if present,
#   "none" to build without), DOCKER (default /usr/bin/docker: the 20.10 CLI has BuildKit built in),
#   ODOO_AI_ODOO18_TARBALL (--real: the Odoo source tarball).
set -euo pipefail

case "${ODOO_AI_ODOO18_TARBALL:-/}" in /*) ;; *) ODOO_AI_ODOO18_TARBALL=$PWD/$ODOO_AI_ODOO18_TARBALL ;; esac
cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-/usr/bin/docker}
export DOCKER_BUILDKIT=1
BASE_IMAGE=${ODOO_AI_BASE_IMAGE:-odoo-ai-test/debian:bookworm}
CA=${ODOO_AI_BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}
VERBOSE=0
REAL=0
ODOO18_TARBALL=${ODOO_AI_ODOO18_TARBALL:-../shared/odoo18/odoo-18.0-community-core.tar.gz}
ODOO18_SHA256=1a3d39d332ac782ff20048be65f6c596fe60951f9444252f0bdea08c2c10ed41
ODOO18_DIR=vendor/odoo18-test

scenarios=()
while [ $# -gt 0 ]; do
    case "$1" in
        --scenario) scenarios+=("$2"); shift 2 ;;
        --scenario=*) scenarios+=("${1#*=}"); shift ;;
        --real) REAL=1; shift ;;
        -v|--verbose) VERBOSE=1; shift ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "build-test-images: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ "${scenarios[*]:-}" = all ]; then
    scenarios=()
    for d in tests/fixtures/standin-addons/*/; do
        s=$(basename "$d"); [ "$s" = ok ] || scenarios+=("$s")
    done
fi

log() { printf '[build-test-images] %s\n' "$*" >&2; }

"$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1 || {
    log "base image $BASE_IMAGE is missing: run scripts/provision-host.sh first"; exit 1; }

secret_args=()
if [ "$CA" != none ] && [ -s "$CA" ]; then
    secret_args=(--secret "id=ca,src=$CA")
fi

build() {  # build TAG ARGS...
    local tag=$1; shift
    local t0 t1 out
    t0=$(date +%s.%N)
    out=$(mktemp)
    if ! "$DOCKER" build --progress=plain -t "$tag" "$@" >"$out" 2>&1; then
        cat "$out" >&2; rm -f "$out"
        log "FAILED: $tag"; exit 1
    fi
    [ "$VERBOSE" = 0 ] || cat "$out" >&2
    rm -f "$out"
    t1=$(date +%s.%N)
    printf 'built %s %s %ss\n' "$tag" "$("$DOCKER" image inspect --format '{{.Id}}' "$tag")" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
}

build odoo-ai-test/postgres:15 --build-arg "BASE_IMAGE=$BASE_IMAGE" tests/images/postgres
build odoo-ai-test/nginx:1 --build-arg "BASE_IMAGE=$BASE_IMAGE" tests/images/nginx
build odoo-ai-test/mailcatcher:1 --build-arg "BASE_IMAGE=$BASE_IMAGE" tests/images/mailcatcher

# Labels stay constant between runs (no wall-clock BUILD_TIME) so a cached rebuild gives the
# same image ID and leaves no dangling images behind.
odoo_args=(
    -f docker/Dockerfile
    --build-arg "BASE_IMAGE=$BASE_IMAGE"
    --build-arg ODOO_LOCAL_SRC=tests/fixtures/standin-odoo
    --build-arg "WKHTMLTOPDF=${ODOO_BUILD_WKHTMLTOPDF:-none}"
    --build-arg ODOO_REF=18.0-standin
    --build-arg "SOURCE_COMMIT=$(git rev-parse --verify -q HEAD 2>/dev/null || true)"
    --build-arg "BUILD_TIME=${ODOO_AI_BUILD_TIME:-}"
    "${secret_args[@]}"
)
for scenario in ok "${scenarios[@]}"; do
    dir=tests/fixtures/standin-addons/$scenario
    [ -d "$dir" ] || { log "no such scenario: $dir"; exit 2; }
    suffix=standin
    [ "$scenario" = ok ] || suffix=standin-$scenario
    for target in web script-runner; do
        build "odoo-ai-test/odoo-$target:$suffix" "${odoo_args[@]}" --target "$target" \
            --build-arg "ADDONS_DIR=$dir" .
    done
done

[ "$REAL" = 1 ] || exit 0

# ------------------------------------------------------------------ real Odoo 18 (--real)
# Unpack once: $ODOO18_DIR/SHA256 records the tarball the tree came from; a tree from another
# (or an interrupted) unpack is replaced. The unpack goes to a temp dir renamed into place.
if [ "$(cat "$ODOO18_DIR/SHA256" 2>/dev/null || true)" != "$ODOO18_SHA256" ] \
        || [ ! -f "$ODOO18_DIR/odoo-18.0/odoo/addons/base/__manifest__.py" ]; then
    [ -f "$ODOO18_TARBALL" ] || {
        log "--real: no Odoo 18 source tarball at $ODOO18_TARBALL (set ODOO_AI_ODOO18_TARBALL)"; exit 1; }
    got=$(sha256sum "$ODOO18_TARBALL" | cut -d' ' -f1)
    [ "$got" = "$ODOO18_SHA256" ] || {
        log "--real: $ODOO18_TARBALL has sha256 $got, expected $ODOO18_SHA256"; exit 1; }
    tmp="$ODOO18_DIR.tmp.$$"
    rm -rf "$tmp"; mkdir -p "$tmp"
    tar -xzf "$ODOO18_TARBALL" -C "$tmp" --no-same-owner
    [ -f "$tmp/odoo-18.0/odoo/addons/base/__manifest__.py" ] || {
        rm -rf "$tmp"; log "--real: $ODOO18_TARBALL does not unpack to odoo-18.0/"; exit 1; }
    printf '%s\n' "$ODOO18_SHA256" > "$tmp/SHA256"
    rm -rf "$ODOO18_DIR"; mv "$tmp" "$ODOO18_DIR"
    log "unpacked $ODOO18_TARBALL into $ODOO18_DIR/odoo-18.0"
fi

real_args=(
    -f docker/Dockerfile
    --build-arg "BASE_IMAGE=$BASE_IMAGE"
    --build-arg "ODOO_LOCAL_SRC=$ODOO18_DIR/odoo-18.0"
    --build-arg "WKHTMLTOPDF=${ODOO_BUILD_WKHTMLTOPDF:-none}"
    --build-arg ODOO_REF=18.0
    --build-arg "SOURCE_COMMIT=$(git rev-parse --verify -q HEAD 2>/dev/null || true)"
    --build-arg "BUILD_TIME=${ODOO_AI_BUILD_TIME:-}"
    "${secret_args[@]}"
)
for dir in tests/fixtures/real-addons/*/; do
    scenario=$(basename "$dir")
    for target in web script-runner; do
        build "odoo-ai-test/odoo-$target:real-$scenario" "${real_args[@]}" --target "$target" \
            --build-arg "ADDONS_DIR=${dir%/}" .
    done
done
