#!/bin/sh
# Fetch the pinned addon repositories into one flat addons directory (POSIX sh; run by the
# addon-repos stage of docker/Dockerfile, in a throw-away build container).
#
#   addon_repos.sh OUT "URL COMMIT PATH[,PATH...];URL COMMIT PATH..."
#
# The list is what `odoo-ai build` makes of addon-repos.yaml (checked there: full 40-hex
# commits, URLs without credentials, relative paths). For each repository: fetch exactly
# COMMIT (by sha; servers that refuse that get a fetch of every branch and tag), then copy
# each PATH that is an addon, or each addon directly under a PATH that is a directory of
# addons ("." = the top level), to OUT/<addon name>. Failures name the repository and the
# commit, on one line starting with "ERROR: addon repo" (the CLI shows that line).
#
# Credentials are BuildKit secrets of this RUN only: /run/secrets/addons_key (an ssh key) with
# /run/secrets/addons_known_hosts (pinned host keys; never trust on first use), and
# /run/secrets/ca (an extra CA bundle for https).
set -eu

out=$1
list=${2:-}

fail() { printf 'ERROR: addon repo %s\n' "$*" >&2; exit 1; }

mkdir -p "$out"
if [ -z "$list" ]; then
    echo "addon-repos: none listed"
    exit 0
fi

if [ -s /run/secrets/addons_key ]; then
    [ -s /run/secrets/addons_known_hosts ] || fail "fetch: the addons_key secret needs addons_known_hosts (pinned host keys)"
    GIT_SSH_COMMAND="ssh -F /dev/null -i /run/secrets/addons_key -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/run/secrets/addons_known_hosts -o GlobalKnownHostsFile=/dev/null -o UpdateHostKeys=no"
else
    GIT_SSH_COMMAND="ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null"
fi
export GIT_SSH_COMMAND GIT_TERMINAL_PROMPT=0
if [ -s /run/secrets/ca ]; then export GIT_SSL_CAINFO=/run/secrets/ca; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/addon-repos.XXXXXX")
sources="$work/.sources"  # "name<TAB>url@commit" of every addon copied, to name both sides of a clash
: > "$sources"

copy_addon() {  # copy_addon SRC NAME URL COMMIT
    case "$2" in
        ''|.*|*[!A-Za-z0-9_]*) fail "$3 @ $4: '$2' is not an Odoo module name (letters, digits, _)" ;;
    esac
    if [ -e "$out/$2" ]; then
        first=$(awk -F '\t' -v n="$2" '$1 == n { print $2; exit }' "$sources")
        fail "$3 @ $4: addon $2 is also in ${first:-another listed repository}: each addon may come from one repository only"
    fi
    cp -a "$1" "$out/$2"
    find "$out/$2" -name .git -prune -exec rm -rf {} +
    printf '%s\t%s @ %s\n' "$2" "$3" "$4" >> "$sources"
    copied="$copied $2"
}

n=0
old_ifs=$IFS
set -f  # the list's words are split, never globbed
IFS=';'
# shellcheck disable=SC2086 # split on ';' on purpose
set -- $list
IFS=$old_ifs
for entry in "$@"; do
    # shellcheck disable=SC2086 # "URL COMMIT PATHS": split on blanks on purpose
    set -- $entry
    url=${1:-}
    commit=${2:-}
    paths=${3:-.}
    [ -n "$url" ] && [ -n "$commit" ] || fail "list entry '$entry': expected URL COMMIT [PATHS]"
    n=$((n + 1))
    repo="$work/$n"
    git init -q "$repo"
    git -C "$repo" remote add origin "$url"
    if ! git -C "$repo" fetch -q --depth 1 origin "$commit" 2> "$work/fetch.err"; then
        echo "addon-repos: $url: fetching $commit by sha was refused, fetching every branch and tag"
        if ! git -C "$repo" fetch -q origin '+refs/heads/*:refs/remotes/origin/*' '+refs/tags/*:refs/tags/*' 2>> "$work/fetch.err"; then
            fail "$url @ $commit: cannot fetch from the repository: $(grep -v '^$' "$work/fetch.err" | tail -n 1)"
        fi
    fi
    if ! git -C "$repo" cat-file -e "$commit^{commit}" 2> /dev/null; then
        fail "$url @ $commit: commit not found in the repository (deleted, or moved away by a force-push): pin an existing commit in addon-repos.yaml"
    fi
    git -C "$repo" -c advice.detachedHead=false checkout -q "$commit"
    copied=
    IFS=','
    # shellcheck disable=SC2086 # split on ',' on purpose
    set -- $paths
    IFS=$old_ifs
    set +f  # the addon directories below are found by a glob
    for path in "$@"; do
        if [ "$path" = . ]; then src=$repo; else src="$repo/$path"; fi
        [ -d "$src" ] && [ ! -L "$src" ] || fail "$url @ $commit: no directory '$path' in the repository"
        before=$copied
        if [ -f "$src/__manifest__.py" ]; then
            if [ "$path" = . ]; then name=$(basename "$url" .git); else name=$(basename "$path"); fi
            copy_addon "$src" "$name" "$url" "$commit"
        else
            for dir in "$src"/*; do
                if [ -d "$dir" ] && [ ! -L "$dir" ] && [ -f "$dir/__manifest__.py" ]; then
                    copy_addon "$dir" "$(basename "$dir")" "$url" "$commit"
                fi
            done
        fi
        [ "$copied" != "$before" ] || fail "$url @ $commit: '$path' holds no Odoo addon (no __manifest__.py in it or directly under it)"
    done
    echo "addon-repos: $url @ $commit:$copied"
    rm -rf "$repo"
    set -f
done
set +f
rm -rf "$work"
chmod -R u+rwX,go+rX,go-w "$out"
