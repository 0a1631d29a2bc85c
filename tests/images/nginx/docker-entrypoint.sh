#!/bin/sh
# TEST image entrypoint (odoo-ai tests only): like the official nginx image, renders
# /etc/nginx/templates/*.template into /etc/nginx/conf.d/ with envsubst, substituting only
# variables that are set (nginx's own $variables stay), then execs the command.
set -eu
tdir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
odir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
if [ "${1:-}" = nginx ] && [ -d "$tdir" ]; then
    defined=$(awk 'BEGIN { for (k in ENVIRON) if (k ~ /^[A-Za-z_][A-Za-z0-9_]*$/) printf "${%s} ", k }' </dev/null)
    for t in "$tdir"/*"$suffix"; do
        [ -f "$t" ] || continue
        out="$odir/$(basename "$t" "$suffix")"
        echo "$0: rendering $t to $out" >&2
        envsubst "$defined" < "$t" > "$out"
    done
fi
exec "$@"
