#!/usr/bin/env bash
# Runs the service in the foreground on 127.0.0.1: a web server in front of a
# spawn-fcgi + multiwatch pool of files-fcgi workers sharing one data directory.
# Prints "listening on http://127.0.0.1:PORT" once requests are answered; on
# SIGINT or SIGTERM stops everything it started.
#
#   scripts/serve.sh [--server lighttpd] [--port N] [--data-dir DIR] [--workers N] [--config PATH]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
server=lighttpd
port=8080
data_dir=./var
workers=4
config=${FILES_API_CONFIG:-}
bin_dir=${FILES_API_BIN:-$here/bin}

usage() { sed -n '2,7s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case $1 in
    --server) server=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "serve.sh: unknown argument $1" >&2; usage 2 ;;
    esac
done
case $server in lighttpd) ;; *) echo "serve.sh: unsupported server: $server" >&2; exit 2 ;; esac

mkdir -p "$data_dir"
chmod 0700 "$data_dir"
data_dir=$(cd "$data_dir" && pwd)
[ -n "$config" ] && config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
worker_args=(--data-dir "$data_dir")
[ -n "$config" ] && worker_args+=(--config "$config")

# The web server's body limit follows the worker's file limit, with room for
# the multipart framing, so the worker (not the server) answers "too large".
max_file_bytes=$("$bin_dir/filesctl" "${worker_args[@]}" config get max_file_bytes)
max_request_kib=$(( max_file_bytes / 1024 + 1024 ))

run=$(mktemp -d /tmp/files-api.XXXXXX)
socket=$run/fcgi.sock
spool=$data_dir/spool
mkdir -p "$spool" "$run/docroot"
chmod 0700 "$spool"
pids=()

# Graceful stop: the web server first (SIGINT: it finishes the requests in
# flight), then the pool (multiwatch passes SIGUSR1 on: each worker finishes
# the request in hand and exits).
stop() {
    trap - INT TERM EXIT
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -INT "${pids[i]}" 2>/dev/null && wait "${pids[i]}" 2>/dev/null
    done
    rm -rf "$run"
}
trap stop EXIT
trap 'exit 0' INT TERM

# The pool: multiwatch restarts dead workers; -r/-t are generous so that a
# burst of crashes never leaves the pool empty.
spawn-fcgi -n -s "$socket" -M 0600 -- /usr/bin/multiwatch -f "$workers" -r 1000 -t 1000 -- \
    "$bin_dir/files-fcgi" "${worker_args[@]}" &
pids+=($!)

cat >"$run/lighttpd.conf" <<CONF
server.modules = ("mod_fastcgi")
server.bind = "127.0.0.1"
server.port = $port
server.document-root = "$run/docroot"
server.upload-dirs = ("$spool")
server.max-request-size = $max_request_kib
server.errorlog = "/dev/stderr"
server.tag = "files-api"
server.graceful-shutdown-timeout = 60
fastcgi.server = ("/" => ((
    "socket" => "$socket",
    "check-local" => "disable",
)))
CONF
lighttpd -D -f "$run/lighttpd.conf" &
pids+=($!)

for _ in $(seq 1 200); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then
        echo "listening on http://127.0.0.1:$port"
        wait -n "${pids[@]}" || true
        echo "serve.sh: a component exited; stopping" >&2
        exit 1
    fi
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "serve.sh: failed to start" >&2; exit 1; }
    done
    sleep 0.1
done
echo "serve.sh: no answer on port $port after 20 s" >&2
exit 1
