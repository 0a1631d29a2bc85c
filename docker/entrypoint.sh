#!/bin/sh
# odoo-ai container entrypoint (POSIX sh).
#
# 1. Writes the Odoo config file $ODOO_RC (default /etc/odoo/odoo.conf; Odoo reads the ODOO_RC
#    variable itself) from the environment: mode 600, owned by the run user, written to a
#    temporary file and renamed. Odoo 18 reads it with configparser.RawConfigParser, so there is
#    no %-interpolation and values are written verbatim; what RawConfigParser cannot carry
#    (newlines, leading/trailing blanks) and what Odoo would turn into booleans (a password
#    "True"/"False") is rejected instead of being silently changed.
# 2. When started as root: creates/chowns the data and log directories for ODOO_RUN_UID/GID and
#    execs the command as that uid/gid with setpriv (util-linux). When started as another user:
#    writes the config and execs directly.
# 3. `odoo-bin`, `/odoo/odoo-bin`, `odoo`, or a first argument starting with `-` run /odoo/odoo-bin.
#
# Environment (defaults in brackets):
#   ODOO_DB_HOST [db]  ODOO_DB_PORT [5432]  ODOO_DB_USER [odoo]
#   ODOO_DB_PASSWORD   required to run odoo-bin (not for --help/--version or other commands)
#   ODOO_DB_NAME       optional: db_name + dbfilter ^NAME$
#   ODOO_ADMIN_PASSWD  optional: admin_passwd (master password; plain or a pbkdf2 hash)
#   ODOO_CONF_DATA_DIR [/volumes/data]   ODOO_LOGFILE [/volumes/logs/odoo.log; empty = stderr]
#   ODOO_WORKERS [0]  ODOO_MAX_CRON_THREADS [1]  ODOO_PROXY_MODE [True]
#   ODOO_HTTP_PORT [8069]  ODOO_GEVENT_PORT [8072]  ODOO_LIST_DB [False]  ODOO_WITHOUT_DEMO [all]
#   ODOO_RUN_UID [1000]  ODOO_RUN_GID [1000]
#   ODOO_EXTRA_ADDONS  optional comma list of directories prepended to addons_path
#   ODOO_CONF_<KEY>    any other Odoo option, written as `<key lowercased> = value`
#                      (e.g. ODOO_CONF_LIMIT_TIME_REAL=600); keys managed above are refused
# For one-off tools (psql, pg_dump) it also exports PGHOST/PGPORT/PGUSER/PGDATABASE and
# PGPASSFILE (a 600 pgpass file next to $ODOO_RC) unless they are already set.
set -eu

me=odoo-entrypoint
# Exit status 78 (EX_CONFIG) for a refused configuration, so callers can tell it from Odoo's.
die() { printf '%s: ERROR: %s\n' "$me" "$*" >&2; exit 78; }
warn() { printf '%s: WARNING: %s\n' "$me" "$*" >&2; }

nl='
'
cr=$(printf '\r')
tab=$(printf '\t')

# check_value NAME VALUE: refuse what the config file cannot carry exactly.
check_value() {
    case "$2" in
        *"$nl"*|*"$cr"*) die "$1 contains a line break; Odoo's config file cannot hold it" ;;
        " "*|*" "|"$tab"*|*"$tab") die "$1 starts or ends with a blank; Odoo's config parser would strip it" ;;
    esac
}
check_secret() {
    check_value "$1" "$2"
    case "$2" in
        True|true|False|false) die "$1 is the literal '$2', which Odoo reads as a boolean; choose another value" ;;
    esac
}
check_uint() {
    case "$2" in
        ''|*[!0-9]*) die "$1 must be a non-negative integer, got '$2'" ;;
    esac
}
to_bool() {  # to_bool NAME VALUE -> True/False
    case "$2" in
        [Tt]rue|TRUE|1|[Yy]es|YES|[Oo]n|ON) echo True ;;
        [Ff]alse|FALSE|0|[Nn]o|NO|[Oo]ff|OFF) echo False ;;
        *) die "$1 must be a boolean (True/False), got '$2'" ;;
    esac
}
has_addon() {  # has_addon DIR: at least one DIR/*/__manifest__.py
    for _m in "$1"/*/__manifest__.py; do
        [ -f "$_m" ] && return 0
    done
    return 1
}

# ---------------------------------------------------------------- command
if [ $# -eq 0 ]; then
    set -- /odoo/odoo-bin
fi
case "$1" in
    odoo-bin|/odoo/odoo-bin|odoo) shift; set -- /odoo/odoo-bin "$@" ;;
    -*) set -- /odoo/odoo-bin "$@" ;;
esac
needs_db_password=0
if [ "$1" = /odoo/odoo-bin ]; then
    needs_db_password=1
    for _a in "$@"; do
        case "$_a" in -h|--help|--version) needs_db_password=0 ;; esac
    done
fi

# ---------------------------------------------------------------- settings
ODOO_RC=${ODOO_RC:-/etc/odoo/odoo.conf}
export ODOO_RC
db_host=${ODOO_DB_HOST:-db}
db_port=${ODOO_DB_PORT:-5432}
db_user=${ODOO_DB_USER:-odoo}
db_password=${ODOO_DB_PASSWORD:-}
db_name=${ODOO_DB_NAME:-}
admin_passwd=${ODOO_ADMIN_PASSWD:-}
data_dir=${ODOO_CONF_DATA_DIR:-/volumes/data}
logfile=${ODOO_LOGFILE-/volumes/logs/odoo.log}
workers=${ODOO_WORKERS:-0}
max_cron_threads=${ODOO_MAX_CRON_THREADS:-1}
proxy_mode=${ODOO_PROXY_MODE:-True}
http_port=${ODOO_HTTP_PORT:-8069}
gevent_port=${ODOO_GEVENT_PORT:-8072}
list_db=${ODOO_LIST_DB:-False}
without_demo=${ODOO_WITHOUT_DEMO:-all}
run_uid=${ODOO_RUN_UID:-1000}
run_gid=${ODOO_RUN_GID:-1000}

check_value ODOO_DB_HOST "$db_host"
check_uint ODOO_DB_PORT "$db_port"
check_value ODOO_DB_USER "$db_user"
check_secret ODOO_DB_PASSWORD "$db_password"
check_secret ODOO_ADMIN_PASSWD "$admin_passwd"
check_value ODOO_CONF_DATA_DIR "$data_dir"
check_value ODOO_LOGFILE "$logfile"
check_uint ODOO_WORKERS "$workers"
check_uint ODOO_MAX_CRON_THREADS "$max_cron_threads"
check_uint ODOO_HTTP_PORT "$http_port"
check_uint ODOO_GEVENT_PORT "$gevent_port"
check_value ODOO_WITHOUT_DEMO "$without_demo"
check_uint ODOO_RUN_UID "$run_uid"
check_uint ODOO_RUN_GID "$run_gid"
check_value ODOO_RC "$ODOO_RC"
proxy_mode=$(to_bool ODOO_PROXY_MODE "$proxy_mode")
list_db=$(to_bool ODOO_LIST_DB "$list_db")
case "$data_dir" in /*) ;; *) die "ODOO_CONF_DATA_DIR must be an absolute path, got '$data_dir'" ;; esac
case "$logfile" in ''|/*) ;; *) die "ODOO_LOGFILE must be an absolute path or empty, got '$logfile'" ;; esac
case "$ODOO_RC" in /*) ;; *) die "ODOO_RC must be an absolute path, got '$ODOO_RC'" ;; esac

dbfilter=
if [ -n "$db_name" ]; then
    check_value ODOO_DB_NAME "$db_name"
    # Odoo's own rule for database names (odoo.service.db.DBNAME_PATTERN), at most 63 characters
    # (PostgreSQL's limit); the CLI applies the same rule (odoo_ai.config.settings.valid_db_name).
    if ! printf '%s\n' "$db_name" | LC_ALL=C grep -Eq '^[a-zA-Z0-9][a-zA-Z0-9_.-]+$' || [ ${#db_name} -gt 63 ]; then
        die "ODOO_DB_NAME '$db_name' is not a valid Odoo database name ([a-zA-Z0-9][a-zA-Z0-9_.-]+, at most 63 characters)"
    fi
    dbfilter="^$(printf '%s' "$db_name" | sed 's/\./\\./g')\$"
fi

if [ "$needs_db_password" = 1 ] && [ -z "$db_password" ]; then
    die "ODOO_DB_PASSWORD is not set (required to run odoo-bin)"
fi

# addons_path: extra dirs, custom addons, addon repositories (addon-repos.yaml), enterprise,
# Odoo's addons (git layout), base addons.
# Odoo still searches its own odoo/addons first, whatever this order (addons/README.md).
addons_path=
add_path() { addons_path=${addons_path:+$addons_path,}$1; }
if [ -n "${ODOO_EXTRA_ADDONS:-}" ]; then
    check_value ODOO_EXTRA_ADDONS "$ODOO_EXTRA_ADDONS"
    _rest=$ODOO_EXTRA_ADDONS
    while [ -n "$_rest" ]; do
        _p=${_rest%%,*}
        case "$_rest" in *,*) _rest=${_rest#*,} ;; *) _rest= ;; esac
        _p=$(printf '%s' "$_p" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
        [ -n "$_p" ] || continue
        case "$_p" in /*) ;; *) die "ODOO_EXTRA_ADDONS entries must be absolute paths, got '$_p'" ;; esac
        if [ -d "$_p" ]; then add_path "$_p"; else warn "ODOO_EXTRA_ADDONS: no such directory '$_p', skipped"; fi
    done
fi
has_addon /opt/odoo/custom-addons && add_path /opt/odoo/custom-addons
has_addon /opt/odoo/addon-repos && add_path /opt/odoo/addon-repos
has_addon /opt/odoo/enterprise && add_path /opt/odoo/enterprise
[ -d /odoo/addons ] && add_path /odoo/addons
add_path /odoo/odoo/addons

# Options managed above; ODOO_CONF_<KEY> may not set them a second time (RawConfigParser is
# strict: a duplicate key makes Odoo fail to read the file).
managed=" db_host db_port db_user db_password db_name dbfilter admin_passwd data_dir logfile workers max_cron_threads proxy_mode http_port gevent_port list_db without_demo addons_path "
extra_conf=
for _var in $(awk 'BEGIN { for (k in ENVIRON) if (k ~ /^ODOO_CONF_[A-Za-z0-9_]+$/) print k }' </dev/null | sort); do
    [ "$_var" = ODOO_CONF_DATA_DIR ] && continue
    _key=$(printf '%s' "${_var#ODOO_CONF_}" | tr 'A-Z' 'a-z')
    case "$managed" in *" $_key "*) die "$_var sets '$_key', which the entrypoint manages; use the dedicated ODOO_* variable" ;; esac
    eval "_val=\${$_var}"
    check_value "$_var" "$_val"
    extra_conf="$extra_conf$_key = $_val$nl"
done

write_conf() {  # write_conf FILE
    {
        printf '%s\n' '[options]'
        printf 'db_host = %s\n' "$db_host"
        printf 'db_port = %s\n' "$db_port"
        printf 'db_user = %s\n' "$db_user"
        [ -z "$db_password" ] || printf 'db_password = %s\n' "$db_password"
        if [ -n "$db_name" ]; then
            printf 'db_name = %s\n' "$db_name"
            printf 'dbfilter = %s\n' "$dbfilter"
        fi
        [ -z "$admin_passwd" ] || printf 'admin_passwd = %s\n' "$admin_passwd"
        printf 'data_dir = %s\n' "$data_dir"
        [ -z "$logfile" ] || printf 'logfile = %s\n' "$logfile"
        printf 'addons_path = %s\n' "$addons_path"
        printf 'workers = %s\n' "$workers"
        printf 'max_cron_threads = %s\n' "$max_cron_threads"
        printf 'proxy_mode = %s\n' "$proxy_mode"
        printf 'http_port = %s\n' "$http_port"
        printf 'gevent_port = %s\n' "$gevent_port"
        printf 'list_db = %s\n' "$list_db"
        printf 'without_demo = %s\n' "$without_demo"
        printf '%s' "$extra_conf"
    } >"$1"
}
pgpass_escape() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/:/\\:/g'; }
write_pgpass() {  # write_pgpass FILE
    printf '%s:%s:*:%s:%s\n' "$(pgpass_escape "$db_host")" "$db_port" \
        "$(pgpass_escape "$db_user")" "$(pgpass_escape "$db_password")" >"$1"
}
# install_file WRITER DEST [UID GID]: umask 077 temp file in DEST's directory, then rename.
install_file() {
    _dir=$(dirname "$2")
    _tmp=$(umask 077 && mktemp "$_dir/.$(basename "$2").XXXXXX") || die "cannot write in $_dir (set ODOO_RC to a writable path)"
    if ! (umask 077 && "$1" "$_tmp"); then rm -f "$_tmp"; die "cannot write $2"; fi
    if [ $# -ge 4 ]; then chown "$3:$4" "$_tmp" || { rm -f "$_tmp"; die "cannot chown $2"; }; fi
    mv -f "$_tmp" "$2" || { rm -f "$_tmp"; die "cannot rename $_tmp to $2"; }
}
# ensure_owned DIR: mkdir -p; chown -R to the run user when the directory is not owned by it.
ensure_owned() {
    mkdir -p "$1" || { warn "cannot create $1"; return 0; }
    if [ "$(stat -c '%u:%g' "$1")" != "$run_uid:$run_gid" ]; then
        chown -R "$run_uid:$run_gid" "$1" || warn "cannot chown $1 to $run_uid:$run_gid"
    fi
}

rc_dir=$(dirname "$ODOO_RC")
pgpass_file=$rc_dir/pgpass
[ -n "${PGHOST:-}" ] || export PGHOST="$db_host"
[ -n "${PGPORT:-}" ] || export PGPORT="$db_port"
[ -n "${PGUSER:-}" ] || export PGUSER="$db_user"
[ -z "$db_name" ] || [ -n "${PGDATABASE:-}" ] || export PGDATABASE="$db_name"

if [ "$(id -u)" = 0 ]; then
    ensure_owned "$data_dir"
    if [ -n "$logfile" ]; then
        ensure_owned "$(dirname "$logfile")"
        if [ -e "$logfile" ] && [ "$(stat -c '%u:%g' "$logfile")" != "$run_uid:$run_gid" ]; then
            chown "$run_uid:$run_gid" "$logfile" || warn "cannot chown $logfile"
        fi
    fi
    mkdir -p "$rc_dir"
    if [ "$rc_dir" = /etc/odoo ]; then
        chown "$run_uid:$run_gid" "$rc_dir"
        chmod 0700 "$rc_dir"
    fi
    install_file write_conf "$ODOO_RC" "$run_uid" "$run_gid"
    if [ -n "$db_password" ]; then
        install_file write_pgpass "$pgpass_file" "$run_uid" "$run_gid"
        [ -n "${PGPASSFILE:-}" ] || export PGPASSFILE="$pgpass_file"
    fi
    # HOME of the run user, if it has a passwd entry; /tmp otherwise.
    _home=$(getent passwd "$run_uid" | cut -d: -f6) || true
    [ -n "$_home" ] && [ -d "$_home" ] || _home=/tmp
    export HOME="$_home"
    exec setpriv --reuid="$run_uid" --regid="$run_gid" --clear-groups -- "$@"
fi

install_file write_conf "$ODOO_RC"
if [ -n "$db_password" ]; then
    install_file write_pgpass "$pgpass_file"
    [ -n "${PGPASSFILE:-}" ] || export PGPASSFILE="$pgpass_file"
fi
exec "$@"
