#!/usr/bin/env bash
# Runs the service in the foreground on 127.0.0.1: a web server in front of a
# spawn-fcgi + multiwatch pool of files-fcgi workers sharing one data directory.
# Prints "listening on http://127.0.0.1:PORT" once requests are answered; on
# SIGINT, SIGTERM or SIGHUP stops everything it started.
#
#   scripts/serve.sh [--server lighttpd|apache|nginx|lighttpd-spawn|apache-fcgid] [--port N] [--data-dir DIR] [--workers N] [--config PATH]
#                    [--download-mode auto|stream|x-sendfile|x-accel-redirect] [--banner-file FILE]
#                    [--gc-interval SECONDS] [--start-timeout SECONDS]
#
# Defaults: --server lighttpd --port 8080 --workers 4 --download-mode auto.
# Downloads are handed to the web server (auto, the default): X-Sendfile for
# lighttpd and for Apache (with mod_xsendfile, when its children can read the
# data directory), X-Accel-Redirect for nginx, unless the configuration file
# already names a hand-off; stream makes the workers send them. A
# $FILES_API_DOWNLOAD_MODE in the environment counts as --download-mode.
# Without --data-dir, the data directory is the configuration's data_dir
# ($FILES_API_DATA_DIR, the file's, else ./var), as for the worker and filesctl.
# --banner-file FILE's text (read at start; a file, not an argument, so that a
# secret in it, such as make run's key, never shows in the process list) is
# printed after the "listening" line, so only once it holds.
# Expired files are deleted every --gc-interval seconds (600; 0: never), as
# the systemd timer does where the service is installed.
# If /healthz does not answer 200 within --start-timeout seconds (20), serve.sh
# stops what it started and exits 1, saying why.
set -euo pipefail
set +m # no job control even if asked (bash -m): background jobs stay in our group
# Nothing we make is writable by others, whatever umask we were given (under
# umask 000 the run directory's configuration, error pages and lighttpd's
# worker sockets were, and any local user could talk to root's workers).
umask "$(printf '%04o' $(( $(umask) | 022 )))"
# Started in the background by a non-interactive shell, we find SIGINT ignored,
# and bash can neither trap nor reset a signal ignored at entry: start again,
# once, with the default action for SIGINT and SIGTERM (SIGHUP is left as it
# is: nohup means it).
if [ -z "${_FILES_API_SERVE_SIGNALS:-}" ]; then
    _FILES_API_SERVE_SIGNALS=1 exec env --default-signal=INT,TERM "$BASH" "$0" "$@"
fi
unset _FILES_API_SERVE_SIGNALS
serve_args=("$@")

# Graceful stop: the web server first (it finishes the requests in flight:
# SIGINT for lighttpd, SIGQUIT for nginx, SIGWINCH for Apache), then the pool
# (SIGINT: multiwatch passes SIGUSR1 on, and each worker finishes the request
# in hand and exits). A stop signal can be lost: multiwatch can miss a worker
# it is restarting just then, and Apache one
# that comes while it restarts (a closed terminal's SIGHUP is its "restart").
# So all but lighttpd (which takes a second SIGINT as "stop now") are told
# again every second until they are gone; multiwatch passes a second signal on
# as it is, so it gets SIGTERM, as graceful for the workers. Apache only until
# its graceful stop has begun (it removes its pid file): a second SIGWINCH
# then makes it kill the requests in flight.
declare -A stop_signal=() again=() again_while=() # again_while: repeat only while this file exists
running() { # pid is alive and not yet a zombie waiting for us
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) } # the state follows the command name, in parentheses
    [ "${stat:0:1}" != Z ]
}
# A component forked but not yet exec'd is still a copy of us, or env or setsid
# on the way: SIGINT is ignored there (bash ignores it in background jobs)
# until env resets it, so a stop signal sent then would be lost.
launched() {
    local comm
    { read -r comm <"/proc/$1/comm"; } 2>/dev/null || return 0 # gone: nothing to wait for
    [ "$comm" != "$own_comm" ] && [ "$comm" != env ] && [ "$comm" != setsid ]
}
stop_one() {
    local pid=$1 ticks=0
    until launched "$pid"; do sleep 0.01; done
    kill "-${stop_signal[$pid]:-INT}" "$pid" 2>/dev/null || return 0
    while running "$pid"; do
        sleep 0.1
        ticks=$((ticks + 1))
        if [ -n "${again[$pid]:-}" ] && [ $((ticks % 10)) -eq 0 ] &&
            [ -e "${again_while[$pid]:-/}" ]; then
            kill "-${again[$pid]}" "$pid" 2>/dev/null || true
        fi
    done
    wait "$pid" 2>/dev/null || true # its status is not ours (and set -e)
}
stop() {
    # Ignored, not reset: a second Ctrl-C, or the SIGHUP the kernel sends after
    # the shell's own when a terminal closes, must not cut the stop short.
    trap '' INT TERM HUP
    trap - EXIT
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        stop_one "${pids[i]}"
    done
    if [ -n "$pool_group" ] && kill -TERM -- "-$pool_group" 2>/dev/null; then
        for ((i = 0; i < 50; i++)); do
            kill -0 -- "-$pool_group" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pool_group" 2>/dev/null || true
    fi
    if [ -n "$log_relay" ]; then # (it ends once every writer has: bounded all the same)
        [ -z "$log_pipe" ] || exec {log_pipe}>&-
        for ((i = 0; i < 50; i++)); do
            running "$log_relay" || break
            sleep 0.1
        done
        # (wait would wait on: one still running is left to end alone)
        running "$log_relay" || wait "$log_relay" 2>/dev/null || true
    fi
    [ -z "$run_spool" ] || rm -rf "$run_spool"
    [ -z "$run" ] || rm -rf "$run"
}
# How a component starts: with the default action for every signal (a signal
# that a server's handler would catch could otherwise arrive while it is still
# ignored, inherited, and be lost), and with our death as its parent-death
# signal (SIGTERM), so that none outlives a serve.sh killed outright. env and
# setpriv exec it: $! is its pid.
component=(env --default-signal setpriv --pdeathsig TERM)
run='' run_spool='' log_pipe='' log_relay='' pids=() pool_group='' stop_requested=''
read -r own_comm </proc/$$/comm
# A stop signal ignores the next ones first: one that came before stop() has
# begun would run `exit` again inside the EXIT trap, and skip it. Set before
# anything else: bash waiting for a command (a mkdir) when SIGINT comes
# without a trap would wait, and then go on.
stop_on_signal() {
    trap '' INT TERM HUP
    exit 0
}
trap stop EXIT
trap stop_on_signal INT TERM HUP
# Between starting a component and recording its pid (and how to stop it), a
# stop signal is held: stop() must know every component.
hold_stops() { trap 'stop_requested=1' INT TERM HUP; }
release_stops() {
    trap stop_on_signal INT TERM HUP
    [ -z "$stop_requested" ] || stop_on_signal
}

export PATH=$PATH:/usr/sbin:/sbin # the web servers, also for users whose PATH lacks them

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
server=lighttpd
port=8080
data_dir= # none given: the configuration's
workers=4
config=${FILES_API_CONFIG:-}
bin_dir=${FILES_API_BIN:-$here/bin}
banner= banner_file=
gc_interval=600
start_timeout=20
# Ours to decide (it may say "auto"): filesctl must read the file's own mode.
download_mode=${FILES_API_DOWNLOAD_MODE:-auto}
unset FILES_API_DOWNLOAD_MODE
apache_modules=/usr/lib/apache2/modules

usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
refuse() { echo "serve.sh: $*" >&2; exit 2; }
given=" " # the options seen: one given twice is refused, as filesctl does (which was meant?)
while [ $# -gt 0 ]; do
    case $1 in
    --server|--port|--data-dir|--workers|--config|--download-mode|--banner-file|--gc-interval|\
    --start-timeout)
        [ $# -ge 2 ] && [ -n "$2" ] && [[ $2 != --* ]] || refuse "$1 needs a value"
        [[ $given != *" $1 "* ]] || refuse "$1 given twice"
        given+="$1 " ;;
    esac
    case $1 in
    --server) server=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --download-mode) download_mode=$2; shift 2 ;;
    --banner-file) banner_file=$2; shift 2 ;;
    --gc-interval) gc_interval=$2; shift 2 ;;
    --start-timeout) start_timeout=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "serve.sh: unknown argument $1" >&2; usage 2 ;;
    esac
done
[[ $port =~ ^[1-9][0-9]{0,4}$ ]] && [ "$port" -le 65535 ] || refuse "--port takes 1-65535, not $port"
[[ $workers =~ ^[1-9][0-9]{0,2}$ ]] || refuse "--workers takes 1-999, not $workers"
[[ $gc_interval =~ ^[0-9]{1,7}$ ]] || refuse "--gc-interval takes a number of seconds, not $gc_interval"
[[ $start_timeout =~ ^[1-9][0-9]{0,3}$ ]] ||
    refuse "--start-timeout takes 1-9999 seconds, not $start_timeout"
# lighttpd-spawn and apache-fcgid are the shared-hosting shapes: the web
# server starts and supervises the workers itself (no spawn-fcgi pool).
case $server in
lighttpd|apache|nginx|lighttpd-spawn|apache-fcgid) ;;
*) echo "serve.sh: unsupported server: $server" >&2; exit 2 ;;
esac

# From a fresh clone, serve.sh alone is enough: what is missing (Debian
# packages, the programs) is installed and built first, as `make run` does.
missing_tools() {
    local web_server tool
    case $server in lighttpd*) web_server=lighttpd ;; apache*) web_server=apache2 ;; *) web_server=nginx ;; esac
    for tool in "$web_server" spawn-fcgi multiwatch curl; do
        command -v "$tool" >/dev/null || return 0
    done
    return 1
}
if [ -z "${FILES_API_BIN:-}" ] &&
    { [ ! -x "$bin_dir/files-fcgi" ] || [ ! -x "$bin_dir/filesctl" ] || missing_tools; }; then
    echo "serve.sh: installing and building what is missing (make deps all)" >&2
    make -C "$here" -s --no-print-directory deps all >&2
fi
for prog in files-fcgi filesctl; do
    if [ ! -x "$bin_dir/$prog" ]; then
        echo "serve.sh: $bin_dir/$prog not found (run make)" >&2
        exit 2
    fi
done
# Absolute: the links made to the worker below are read from elsewhere.
bin_dir=$(cd "$bin_dir" && pwd)

if [ -n "$config" ]; then
    # (set -e does not stop a failed cd inside $( && ): check it here.)
    config_dir=$(cd "$(dirname "$config")" 2>/dev/null && pwd) ||
        { echo "serve.sh: --config $config: no such directory" >&2; exit 1; }
    config=${config_dir%/}/$(basename "$config") # (not //name for one in /)
fi
# These paths go into the web server's configuration, each in double quotes.
check_path() {
    local path=$1
    [[ $path == /* ]] || path=$PWD/$path
    [[ $path != *[\"\\\$[:cntrl:]]* ]] ||
        refuse "$1: a path with \", \\, \$ or a control character cannot go into the web server's configuration"
}
for path in "$data_dir" "${FILES_API_DATA_DIR:-}" "$config" "${FILES_API_SPOOL_DIR:-}"; do
    [ -z "$path" ] || check_path "$path"
done
worker_args=()
[ -n "$config" ] && worker_args+=(--config "$config")
[ -n "$data_dir" ] && worker_args+=(--data-dir "$data_dir")

# One filesctl call reads the settings in force: it stops on a bad
# configuration and warns (once) of a $FILES_API_* that is no setting.
settings=$("$bin_dir/filesctl" "${worker_args[@]}" config show)
# The workers would each repeat that warning at every start: they do not get
# those variables. A name that is no shell identifier cannot be unset: for
# those, start again without them (the warning above was the one).
not_unset=()
while read -r name; do
    if [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then unset "$name"; else not_unset+=(-u "$name"); fi
done < <("$bin_dir/filesctl" "${worker_args[@]}" config unknown-env)
[ ${#not_unset[@]} -eq 0 ] || exec env "${not_unset[@]}" "$BASH" "$0" "${serve_args[@]}"
# Read once, after any start again above (a pipe gives its text only once).
if [ -n "$banner_file" ]; then
    banner=$(cat -- "$banner_file") || refuse "--banner-file: cannot read $banner_file"
fi
ctl() { sed -n "s/^$1 = //p" <<<"$settings"; }
data_dir=$(ctl data_dir)
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "serve.sh: something already answers on 127.0.0.1:$port" >&2
    exit 1
fi
check_path "$data_dir"

# The web server's body limit follows the worker's file limit, with room for
# the multipart framing, so the worker (not the server) answers "too large".
# Rounded up to a whole KiB, lighttpd's unit (server.max-request-size): rounded
# down, lighttpd would refuse up to 1023 bytes below the limit its 413 names.
max_file_bytes=$(ctl max_file_bytes)
max_request_bytes=$(( (max_file_bytes + 1048576 + 1023) / 1024 * 1024 ))
x_accel_prefix=$(ctl x_accel_prefix)

# The download hand-off this web server can take; the workers are told with
# $FILES_API_DOWNLOAD_MODE, which overrides the configuration file.
case $server in
lighttpd|lighttpd-spawn) hand_off=x-sendfile ;;
nginx) hand_off=x-accel-redirect ;;
apache|apache-fcgid)
    # As root, Apache's children run as www-data, which can read the private
    # data directory only when the workers are www-data too (mod_fcgid).
    hand_off=stream
    if [ -e "$apache_modules/mod_xsendfile.so" ] &&
        { [ "$server" = apache-fcgid ] || [ "$(id -u)" -ne 0 ]; }; then
        hand_off=x-sendfile
    fi ;;
esac
case $download_mode in
auto)
    download_mode=$(ctl download_mode)
    [ "$download_mode" = stream ] && download_mode=$hand_off ;;
stream|x-sendfile|x-accel-redirect) ;;
*) echo "serve.sh: unknown download mode: $download_mode" >&2; exit 2 ;;
esac
if [ "$download_mode" != stream ] && [ "$download_mode" != "$hand_off" ]; then
    echo "serve.sh: download_mode $download_mode does not work with $server" \
        "(it takes ${hand_off/#stream/no hand-off}); use --download-mode" >&2
    exit 2
fi
export FILES_API_DOWNLOAD_MODE=$download_mode
# lighttpd percent-decodes an X-Sendfile path; the workers send it as it is.
if [[ $server == lighttpd* && $download_mode == x-sendfile && $data_dir == *%* ]]; then
    refuse "$data_dir: lighttpd would percent-decode the downloads' paths under a data directory with % (use another directory, or --download-mode stream)"
fi

# The data directory is made private (0700), unless it holds things that are
# not the service's (a --data-dir /tmp, a scratch directory that also holds the
# files to upload): then it keeps its mode. What the service puts there
# (files.db, files/, tmp/, spool/) is private in any case.
foreign=
if [ -d "$data_dir" ]; then
    for entry in "$data_dir"/* "$data_dir"/.[!.]* "$data_dir"/..?*; do
        [ -e "$entry" ] || [ -L "$entry" ] || continue
        case ${entry##*/} in files.db|files.db-wal|files.db-shm|files.db.damaged|files|tmp|spool|dev-key) ;;
        *) foreign=1 ;;
        esac
    done
fi
if [ -e "$data_dir" ] && [ ! -d "$data_dir" ]; then
    echo "serve.sh: the data directory $data_dir is not a directory" >&2
    exit 1
fi
# mod_fcgid's workers run as www-data: they must reach the data directory
# (its nearest existing ancestor, once links are resolved), and write in it
# where it is not all the service's (it is then not made theirs). Checked
# again once what is the service's is theirs (a umask can close what mkdir
# makes).
as_www_data() { setpriv --reuid=www-data --regid=www-data --clear-groups "$@"; }
www_data_cannot_reach() {
    echo "serve.sh: www-data cannot reach $data_dir (mod_fcgid runs the workers as www-data)" >&2
    exit 1
}
if [ "$server" = apache-fcgid ] && [ "$(id -u)" -eq 0 ]; then
    reach=$(dirname "$(realpath -m -- "$data_dir")")
    while [ ! -e "$reach" ]; do reach=$(dirname "$reach"); done
    as_www_data test -x "$reach" || www_data_cannot_reach
    [ -z "$foreign" ] || as_www_data test -w "$data_dir" -a -x "$data_dir" || www_data_cannot_reach
fi
# The spool, when it is not the data directory's own, must be there already.
if [ -n "${FILES_API_SPOOL_DIR:-}" ] && { [ ! -d "$FILES_API_SPOOL_DIR" ] || [ ! -w "$FILES_API_SPOOL_DIR" ]; }; then
    echo "serve.sh: \$FILES_API_SPOOL_DIR $FILES_API_SPOOL_DIR is not a writable directory" >&2
    exit 1
fi
mkdir -p "$data_dir"
if [ -z "$foreign" ]; then
    chmod 0700 "$data_dir"
elif [ "$(stat -c %a "$data_dir")" != 700 ]; then
    echo "serve.sh: $data_dir holds things that are not the service's: its mode ($(stat -c %a "$data_dir")) is left as it is" >&2
fi
# Its real path, as the workers resolve it: the hand-off paths they send must
# lie under the web server's X-Sendfile root, written from this one.
data_dir=$(cd "$data_dir" && pwd -P)
check_path "$data_dir"
worker_args=(--data-dir "$data_dir")
[ -n "$config" ] && worker_args+=(--config "$config")

# Other $FILES_API_<KEY> settings in our environment, as "NAME VALUE" lines:
# the spawn-fcgi pool inherits them, a web server that starts the workers is
# told to pass them on.
key_settings() {
    local key name
    for key in $(sed 's/ = .*//' <<<"$settings"); do
        name=FILES_API_${key^^}
        case $name in FILES_API_DATA_DIR|FILES_API_DOWNLOAD_MODE) continue ;; esac
        [ -n "${!name:-}" ] && printf '%s %s\n' "$name" "${!name}"
    done
    return 0
}

# The web server's request-body spool: DATA/spool unless FILES_API_SPOOL_DIR
# names another (existing, private) directory.
spool=${FILES_API_SPOOL_DIR:-$data_dir/spool}
if [ -z "${FILES_API_SPOOL_DIR:-}" ]; then
    mkdir -p "$spool"
    chmod 0700 "$spool"
fi

# What a serve.sh killed outright leaves (its components die with it, see
# component above): its run directory and lighttpd's spooled request bodies.
# A run holds a lock on its serve.lock for as long as serve.sh or any
# component lives (they inherit it): a run directory whose lock is free is
# stale, and so is the spool directory it names (lighttpd closes each 1 MiB
# piece of a body once full, so open files would not tell a live upload's).
remove_stale_runs() {
    local lock dir spool_dir
    for lock in /tmp/files-api.*/serve.lock; do
        dir=${lock%/serve.lock}
        [ -O "$dir" ] && [ -O "$lock" ] && flock -n "$lock" true 2>/dev/null || continue
        # (only what serve.sh names so: the path is read from a file)
        if { read -r spool_dir <"$dir/spool-dir"; } 2>/dev/null &&
            [[ ${spool_dir##*/} == lighttpd.?* || ${spool_dir##*/} == fcgid.?* ]]; then
            rm -rf -- "$spool_dir" || true
        fi
        rm -rf -- "$dir" || true
    done
}
remove_stale_runs

run=$(mktemp -d /tmp/files-api.XXXXXX)
chmod 0755 "$run"
# Locked before it takes its name, so that no other start finds it free.
exec {run_lock}>"$run/serve.lock.new"
flock -n "$run_lock"
mv "$run/serve.lock.new" "$run/serve.lock"
# lighttpd spools into a directory of this run's own; so does mod_fcgid
# (bodies over FcgidMaxRequestInMem, in Apache's TMPDIR: else /tmp).
case $server in
lighttpd*) run_spool=$(mktemp -d "$spool/lighttpd.XXXXXX") ;;
apache-fcgid) run_spool=$(mktemp -d "$spool/fcgid.XXXXXX") ;;
esac
[ -z "$run_spool" ] || printf '%s\n' "$run_spool" >"$run/spool-dir"
socket=$run/fcgi.sock
mkdir -p "$run/docroot" "$run/errors"

# Errors the web server answers itself are in the API's JSON format too: a
# request it cannot parse (400, 414, 431, 501, 505; Apache's 404 for an encoded
# NUL or '/' in the path), a method it refuses (nginx's 405 for TRACE), a
# precondition it judges (412), an expectation it does not meet (417), a body
# over its limit (413, the worker's own VALIDATION_4016), a client too slow
# (408), a spool it cannot write or a body that did not all arrive (500), a
# worker that died mid-request (502/500), an overloaded backend (503), a
# timeout (504). The status stays the server's; the code is the nearest in SPEC.
# The worker's routes (as regular expressions over the raw path) and the
# Allow header of each, for the 405s that nginx and Apache answer themselves.
# The worker routes the percent-decoded path: so do these (encoded_route).
route_allows() {
    local route
    for route in "/healthz|GET, HEAD" "/v1/files|GET, HEAD, POST" \
        "/v1/files/ID|GET, HEAD, DELETE" "/v1/files/ID/content|GET, HEAD"; do
        printf '%s\t%s\n' "$(encoded_route "${route%%|*}")" "${route#*|}"
    done
}
# PCRE (nginx's and Apache's) for a route whose every character may come
# percent-encoded, and whose ID is a segment with no '/' (nor %2F, nor %00) in
# it. Where they are used, an absolute-form target (http://host/...) and one
# trailing '/' (or %2F) are allowed too, as the worker allows them.
encoded_route() {
    local route=$1 out="" c hex low
    while [ -n "$route" ]; do
        case $route in
        ID*)
            out+='(?:[^/?% ]|%(?!2[fF]|00)[0-9A-Fa-f]{2})+'
            route=${route#ID} ;;
        *)
            c=${route:0:1} route=${route:1}
            printf -v hex '%02X' "'$c"
            low=${hex:1}
            [[ $low != [A-F] ]] || low="[$low${low,,}]"
            out+="(?:$c|%${hex:0:1}$low)" ;;
        esac
    done
    printf '%s' "$out"
}
absolute_form='(?:[hH][tT][tT][pP][sS]?://[^/? ]*)?' trailing_slash='(?:/|%2[fF])?'
# The pages are conf/errors/, which make install installs for the snippets;
# the 413's limits are this service's own.
error_statuses=
for page in "$here"/conf/errors/[0-9][0-9][0-9].json; do
    status=$(basename "$page" .json)
    error_statuses+=" $status"
    cp "$page" "$run/errors/$status.json"
    cp "$page" "$run/errors/status-$status.html"
done
printf '{"error":{"code":"VALIDATION_4016","message":"%s","type":"invalid_request_error","param":"file","details":{}}}\n' \
    "the request is over the web server's limit of $max_request_bytes bytes (a file may have at most $max_file_bytes)" \
    | tee "$run/errors/status-413.html" >"$run/errors/413.json"


# Apache's children drop root for www-data: the socket must be theirs to use.
socket_owner=()
if [ "$(id -u)" -eq 0 ] && [ "$server" = apache ]; then
    socket_owner=(-U www-data -G www-data)
fi

# The start, the pool's socket and the first 200 from /healthz, is bounded by
# --start-timeout, in microseconds: SECONDS counts the clock's whole seconds,
# so that SECONDS + 1 may come at once.
start_by=$((${EPOCHREALTIME//[!0-9]/} + start_timeout * 1000000))

# The pool: multiwatch restarts dead workers; -r/-t are generous so that a
# burst of crashes never leaves the pool empty.
if [ "$server" = lighttpd ] || [ "$server" = apache ] || [ "$server" = nginx ]; then
    # In a process group of its own (setsid execs, keeping the pid): workers
    # that outlive a multiwatch killed outright are stopped with the group.
    # Out of our group, multiwatch hears of our own death by its parent-death
    # signal (SIGTERM: it stops the workers gracefully).
    pool=("$bin_dir/files-fcgi" "${worker_args[@]}") pool_env=()
    # multiwatch refuses arguments that are not ASCII (glib in the C locale):
    # then the workers get their paths in the environment, their program as a
    # link (else the paths stay on their command lines, for ps to show).
    if [[ ${pool[*]} == *[^[:ascii:]]* ]]; then
        ln -s "$bin_dir/files-fcgi" "$run/files-fcgi"
        pool=("$run/files-fcgi") pool_env=(FILES_API_DATA_DIR="$data_dir")
        [ -z "$config" ] || pool_env+=(FILES_API_CONFIG="$config")
    fi
    hold_stops
    setsid "${component[@]}" env "${pool_env[@]}" \
        spawn-fcgi -n -s "$socket" -M 0600 "${socket_owner[@]}" -- \
        /usr/bin/multiwatch -f "$workers" -r 1000 -t 1000 -- "${pool[@]}" &
    pids+=($!) again[$!]=TERM pool_group=$!
    release_stops
    # The web server starts once the pool's socket is there: lighttpd, finding
    # none, takes the backend for down and answers 503 for the next 3 s.
    until [ -S "$socket" ]; do
        kill -0 "$pool_group" 2>/dev/null && ((${EPOCHREALTIME//[!0-9]/} < start_by)) ||
            { echo "serve.sh: the worker pool did not start (its log above says why)" >&2; exit 1; }
        sleep 0.01
    done
fi

start_lighttpd() {
    local sendfile="" backend="\"socket\" => \"$socket\","
    if [ "$server" = lighttpd-spawn ]; then
        # lighttpd splits bin-path at spaces (it may hold arguments): a link
        # in the run directory stands for a program whose path has one.
        ln -s "$bin_dir/files-fcgi" "$run/files-fcgi"
        backend="\"socket\" => \"$run/spawned.sock\", \"bin-path\" => \"$run/files-fcgi\",
    \"bin-environment\" => (\"FILES_API_DATA_DIR\" => \"$data_dir\", \"FILES_API_CONFIG\" => \"$config\",
        \"FILES_API_DOWNLOAD_MODE\" => \"$download_mode\"$(key_settings |
            while read -r name value; do printf ', "%s" => "%s"' "$name" "$value"; done)),
    \"max-procs\" => $workers,"
    fi
    [ "$download_mode" = x-sendfile ] &&
        sendfile="\"x-sendfile\" => \"enable\", \"x-sendfile-docroot\" => (\"$data_dir/files/\"),"
    cat >"$run/lighttpd.conf" <<CONF
server.modules = ("mod_fastcgi")
server.errorfile-prefix = "$run/errors/status-"
mimetype.assign = (".html" => "application/json")
server.bind = "127.0.0.1"
server.port = $port
server.document-root = "$run/docroot"
server.upload-dirs = ("$run_spool")
server.max-request-size = $(( max_request_bytes / 1024 ))
server.tag = "files-api"
# The worker answers Range itself (206/416 in the API's format); lighttpd would
# otherwise also cut the worker's 200 responses by the client's Range.
server.range-requests = "disable"
fastcgi.server = ("/" => ((
    $backend
    "check-local" => "disable",
    $sendfile
)))
CONF
    hold_stops
    "${component[@]}" lighttpd -D -f "$run/lighttpd.conf" &
    pids+=($!)
    release_stops
}

start_apache() {
    local modules=$apache_modules user="" backend
    backend="ProxyPass \"unix:$socket|fcgi://localhost/\" enablereuse=off"
    if [ "$server" = apache-fcgid ]; then
        # mod_fcgid runs the worker as a FastCGI script; its request limit must
        # be raised from 131072 bytes. As root, its processes run as www-data.
        mkdir -p "$run/fcgid" "$run/cgi"
        ln -s "$bin_dir/files-fcgi" "$run/cgi/files-api.fcgi"
        if [ "$(id -u)" -eq 0 ]; then
            # Only what is the service's: never a directory's other contents.
            chown -R www-data:www-data "$run/fcgid" "$run_spool"
            [ -n "$foreign" ] || chown www-data:www-data "$data_dir"
            for entry in files.db files.db-wal files.db-shm files tmp spool; do
                [ ! -e "$data_dir/$entry" ] || chown -R www-data:www-data "$data_dir/$entry"
            done
            as_www_data test -w "$data_dir" -a -x "$data_dir" || www_data_cannot_reach
            # (APR would skip a TMPDIR that www-data cannot reach, for /tmp.)
            if ! as_www_data test -w "$run_spool" -a -x "$run_spool"; then
                rm -rf -- "$run_spool"
                run_spool=$run/fcgid-bodies
                mkdir -m 0700 "$run_spool"
                chown www-data:www-data "$run_spool"
                echo "serve.sh: www-data cannot reach $spool: mod_fcgid spools bodies in $run_spool" >&2
            fi
        fi
    fi
    [ "$(id -u)" -eq 0 ] && user="User www-data
Group www-data"
    mkdir -p "$run/apache"
    cat >"$run/apache.conf" <<CONF
LoadModule mpm_event_module $modules/mod_mpm_event.so
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule proxy_module $modules/mod_proxy.so
LoadModule proxy_fcgi_module $modules/mod_proxy_fcgi.so
LoadModule alias_module $modules/mod_alias.so
LoadModule env_module $modules/mod_env.so
LoadModule mime_module $modules/mod_mime.so
LoadModule headers_module $modules/mod_headers.so
LoadModule reqtimeout_module $modules/mod_reqtimeout.so
# Debian's defaults for mod_reqtimeout: mod_proxy_fcgi passes a body on as it
# comes, so a client that stops sending holds a worker; 10 s (and 500 bytes/s
# after) instead of Apache's Timeout (60 s), then 408.
RequestReadTimeout header=20-40,MinRate=500 body=10,MinRate=500
$( [ "$server" = apache-fcgid ] && cat <<FCGID
LoadModule fcgid_module $modules/mod_fcgid.so
LoadModule rewrite_module $modules/mod_rewrite.so
FcgidIPCDir $run/fcgid
FcgidProcessTableFile $run/fcgid/table
# (Mutex file: below makes every mutex an fcntl lock, which the kernel's
# deadlock check, taking a whole process for one owner, refuses the event
# MPM's threads with EDEADLK under load: mod_fcgid's children then exit
# mid-request, and once its process table is lost nothing is answered.)
Mutex sysvsem fcgid-proctbl fcgid-pipe
# Above LimitRequestBody, so that a chunked body over it meets Apache's limit
# (413) rather than mod_fcgid's (500).
FcgidMaxRequestLen $(( max_request_bytes * 2 ))
FcgidMaxRequestInMem 65536
FcgidPassHeader Authorization
FcgidIOTimeout 600
FcgidMaxProcessesPerClass $workers
# Apache's core would echo TRACE (200, message/http) before the handler runs;
# off, it answers 405 itself, with the JSON page and the Allow header the worker
# would send for that route. (mod_proxy_fcgi passes TRACE on to the worker.)
TraceEnable off
<Location "/_files_api_errors/">
$(route_allows | while IFS=$'\t' read -r path allow; do
    printf '    Header always set Allow "%s" "expr=%%{REQUEST_STATUS} == 405 && %%{THE_REQUEST} =~ m#^[^ ]+ %s%s%s([?][^ ]*)? #"\n' \
        "$allow" "$absolute_form" "$path" "$trailing_slash"
done)
</Location>
FcgidInitialEnv FILES_API_DATA_DIR "$data_dir"
FcgidInitialEnv FILES_API_CONFIG "$config"
FcgidInitialEnv FILES_API_DOWNLOAD_MODE $download_mode
$(key_settings | while read -r name value; do printf 'FcgidInitialEnv %s "%s"\n' "$name" "$value"; done)
RewriteEngine On
# mod_fcgid hands the worker an empty body when Content-Length is over
# LimitRequestBody (a 400 for "no file"): refuse it here with the 413 instead.
RewriteCond %{REQUEST_URI} !^/_files_api_errors/
RewriteCond expr "%{HTTP:Content-Length} -gt $max_request_bytes" [NV]
RewriteRule ^ - [R=413]
RewriteCond %{REQUEST_URI} !^/_files_api_errors/
RewriteRule ^/ $run/cgi/files-api.fcgi [L]
<Directory "$run/cgi">
    Require all granted
    SetHandler fcgid-script
    Options +ExecCGI +FollowSymLinks
    SetEnv ap_trust_cgilike_cl 1
</Directory>
FCGID
)
TypesConfig /dev/null
$( [ "$download_mode" = x-sendfile ] && echo "LoadModule xsendfile_module $modules/mod_xsendfile.so" )
$user
ServerName 127.0.0.1
# "Server: Apache", not its version, OS and modules (mod_fcgid/2.3.9): nothing a
# client needs, and a guide to known flaws for one that probes.
ServerTokens Prod
ServerSignature Off
Listen 127.0.0.1:$port
PidFile $run/apache/apache.pid
DefaultRuntimeDir $run/apache
Mutex file:$run/apache default
ErrorLog /dev/stderr
LogLevel warn
DocumentRoot $run/docroot
LimitRequestBody $max_request_bytes
<Location "/">
    # Apache hides Authorization from FastCGI unless told.
    CGIPassAuth On
    # Since 2.4.59 Apache drops a FastCGI response's Content-Length unless
    # told to trust it; our worker's lengths are exact.
    SetEnv ap_trust_cgilike_cl 1
    # The worker answers Range itself (206/416 in the API's format); Apache
    # would otherwise cut its whole-content answers (and X-Sendfile'd files).
    MaxRanges none
    # With Max-Forwards: 0, mod_proxy would answer TRACE (echoing the request,
    # its key included) and OPTIONS itself: the worker answers them (405).
    RequestHeader unset Max-Forwards
    # Apache takes a final chunked off and passes the body on with any coding
    # before it still on ("gzip, chunked"): refused, as lighttpd and nginx do.
    <If "-n req_novary('Transfer-Encoding') && ! req_novary('Transfer-Encoding') =~ /^[ \t]*chunked[ \t]*\$/i && -z reqenv('REDIRECT_STATUS')">
        Redirect 501
    </If>
$( [ "$server" = apache ] && echo "    $backend" )
$( [ "$download_mode" = x-sendfile ] && printf '    XSendFile On\n    XSendFilePath "%s"\n' "$data_dir/files" )
</Location>
Alias /_files_api_errors/ $run/errors/
<Location "/_files_api_errors/">
    ProxyPass "!"
    ForceType application/json
    # SYSTEM_9003 comes with Retry-After, also when Apache answers 503 itself.
    Header always set Retry-After "1" "expr=%{REQUEST_STATUS} == 503"
    # Only as an ErrorDocument: asked for directly, it is a route that does not exist.
    <If "-z reqenv('REDIRECT_STATUS')">
        Redirect 404
    </If>
</Location>
<Directory "$run/errors">
    Require all granted
</Directory>
$(for status in $error_statuses; do echo "ErrorDocument $status /_files_api_errors/$status.json"; done)
CONF
    # Apache opens /dev/stderr anew, which for a file would append apart from
    # the workers' writes and be written over: a pipe to cat keeps one file
    # offset (and cat outlasts the last writer, mod_fcgid's workers included).
    # Our child, so that stop() can wait for it.
    hold_stops
    exec {log_pipe}> >(exec cat >&2)
    log_relay=$!
    TMPDIR=${run_spool:-${TMPDIR:-/tmp}} "${component[@]}" apache2 -f "$run/apache.conf" -DFOREGROUND \
        2>&"$log_pipe" &
    pids+=($!) stop_signal[$!]=WINCH again[$!]=WINCH again_while[$!]=$run/apache/apache.pid
    exec {log_pipe}>&-
    log_pipe=''
    release_stops
}

start_nginx() {
    local user=""
    [ "$(id -u)" -eq 0 ] && user="user root;"
    mkdir -p "$run/nginx"
    cat >"$run/nginx.conf" <<CONF
daemon off;
$user
worker_processes 2;
pid $run/nginx/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    access_log off;
    # "Server: nginx", not its version (lighttpd's server.tag says files-api).
    server_tokens off;
    client_max_body_size $max_request_bytes;
    client_body_temp_path "$spool";
    fastcgi_temp_path $run/nginx/fastcgi;
    proxy_temp_path $run/nginx/proxy;
    uwsgi_temp_path $run/nginx/uwsgi;
    scgi_temp_path $run/nginx/scgi;
    # nginx refuses TRACE itself (405): the Allow header the worker would send
    # for that route (an empty value adds no header).
    map "\$status \$request_uri" \$files_api_allow {
        default "";
$(route_allows | while IFS=$'\t' read -r path allow; do
    printf '        "~^405 %s%s%s([?][^ ]*)?$" "%s";\n' "$absolute_form" "$path" "$trailing_slash" "$allow"
done)
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass unix:$socket;
            fastcgi_read_timeout 600s;
        }
$(for status in $error_statuses; do echo "        error_page $status /_files_api_errors/$status.json;"; done)
        # nginx's own status for a request header over its buffers (sent as 400).
        error_page 494 =400 /_files_api_errors/431.json;
        location /_files_api_errors/ {
            internal;
            alias $run/errors/;
            default_type application/json;
            add_header Allow \$files_api_allow always;
        }
        # X-Accel-Redirect target: content files, never reachable from outside.
        location $x_accel_prefix {
            internal;
            alias "$data_dir/files/";
            # The worker's answer stands: its ETag and request id, and no second
            # look at Range (the worker answered the ranges it serves).
            etag off;
            max_ranges 0;
            add_header ETag \$upstream_http_etag;
            add_header X-Request-Id \$upstream_http_x_request_id always;
            add_header X-Content-Type-Options \$upstream_http_x_content_type_options;
        }
    }
}
CONF
    hold_stops
    "${component[@]}" nginx -c "$run/nginx.conf" -e stderr &
    pids+=($!) stop_signal[$!]=QUIT again[$!]=QUIT
    release_stops
}

case $server in
lighttpd|lighttpd-spawn) start_lighttpd ;;
apache|apache-fcgid) start_apache ;;
nginx) start_nginx ;;
esac

# Workers that cannot start answer 503 while they pause between attempts:
# each probe is bounded, and so is the whole wait.
health=''
while ((${EPOCHREALTIME//[!0-9]/} < start_by)); do
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "serve.sh: failed to start" >&2; exit 1; }
    done
    health=$(curl -sS -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" \
        2>/dev/null) || health=''
    if [ "$health" = 200 ]; then
        watched=("${pids[@]}")
        # Until gc, expired files are only no longer listed: each stays on
        # disk, and a list page steps over it. Not watched: gc's end (a
        # stop signal, or a failure it has logged) is not the service's.
        if [ "$gc_interval" -gt 0 ]; then
            hold_stops
            "${component[@]}" "$bin_dir/filesctl" "${worker_args[@]}" gc --every "$gc_interval" &
            pids+=($!) stop_signal[$!]=TERM
            release_stops
            # Its parent-death signal is armed once setpriv has made way for
            # filesctl: were we killed before, it would run on alone.
            gc_pid=$!
            while :; do
                { read -r gc_comm <"/proc/$gc_pid/comm"; } 2>/dev/null || break # gone
                launched "$gc_pid" && [ "$gc_comm" != setpriv ] && break
                sleep 0.01
            done
        fi
        echo "listening on http://127.0.0.1:$port"
        [ -z "$banner" ] || printf '%s\n' "$banner"
        wait -n "${watched[@]}" || true
        echo "serve.sh: a component exited; stopping" >&2
        exit 1
    fi
    sleep 0.1
done
if [ "$health" = 503 ] && [ -e "$data_dir/files.db.damaged" ]; then
    echo "serve.sh: the service answers 503 on port $port after $start_timeout s: SQLite found" \
        "the database damaged ($data_dir/files.db.damaged); once it is restored or repaired," \
        "filesctl fsck removes the mark" >&2
elif [ "$health" = 503 ]; then
    echo "serve.sh: the service answers 503 on port $port after $start_timeout s:" \
        "the workers cannot start (their log above says why)" >&2
else
    echo "serve.sh: no answer on port $port after $start_timeout s" >&2
fi
# Nothing was served, so nothing to stop gracefully for: the pool goes first
# (closing its socket ends the probe still queued there, which the web server
# would otherwise wait for), and SIGTERM is every component's immediate stop.
[ -z "$pool_group" ] || kill -TERM -- "-$pool_group" 2>/dev/null || true
for pid in "${pids[@]}"; do stop_signal[$pid]=TERM; done
exit 1
