#!/bin/sh
# Installs the Debian packages the project needs, only those missing.
# Used by `make run` and `make test`; safe to run again. Needs root (or sudo)
# only when something is missing.
set -eu

packages="gcc make pkg-config libfcgi-dev libcjson-dev libsqlite3-dev nettle-dev libxxhash-dev
spawn-fcgi multiwatch lighttpd apache2 libapache2-mod-fcgid libapache2-mod-xsendfile nginx
curl python3 sqlite3 clang libclang-rt-14-dev procps"
# The SDK test needs Node.js and npm; use the machine's own when it has them.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages="$packages nodejs npm"
[ $# -gt 0 ] && packages="$packages $*"

missing=""
for p in $packages; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "install-deps: run as root to install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Packaged daemons (lighttpd) must not start system-wide services on install.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ] && [ -z "$as_root" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
$as_root apt-get update -qq </dev/null
# shellcheck disable=SC2086
$as_root apt-get install -y -qq --no-install-recommends $missing </dev/null >/dev/null
