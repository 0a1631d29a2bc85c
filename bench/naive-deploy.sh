#!/usr/bin/env bash
# The plan's naive deploy sequence, written by hand, for comparison with
# `odoo-ai deploy` (bench/deploy.py): pull, up -d, exec -u in the RUNNING
# script-runner... which the baseline compose keeps in profile `tools`, so like
# most hand-written scripts this one uses `run --rm` for the update instead,
# then curl the health endpoint until it answers.
# Usage: naive-deploy.sh COMPOSE_ARGS_FILE DB MODULES URL
set -euo pipefail
mapfile -t compose < "$1"
db=$2 modules=$3 url=$4
"${compose[@]}" pull --quiet web script-runner || true
"${compose[@]}" up -d --remove-orphans
"${compose[@]}" run --rm --no-deps -T script-runner /odoo/odoo-bin -d "$db" -u "$modules" --stop-after-init --no-http
for _ in $(seq 1 600); do
  curl -sf "$url" >/dev/null && exit 0
  sleep 0.1
done
echo "naive deploy: $url never answered" >&2
exit 1
