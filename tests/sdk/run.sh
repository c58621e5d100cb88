#!/usr/bin/env bash
# The official OpenAI Node SDK (the `openai` npm package, version pinned in
# package.json / package-lock.json) against the real stack: starts
# scripts/serve.sh on a free port with a temporary data directory, creates the
# keys the tests need with filesctl, runs files.test.mjs with node's built-in
# test runner, stops the stack (also on failure or Ctrl-C) and ends with one
# line "N passed, N failed"; exits non-zero on any failure.
#
#   tests/sdk/run.sh            FILES_API_BIN=DIR picks the programs (default: bin/)
#   FILES_API_KEEP_TMP=1        keep the temp dir (data, serve.log) for a post-mortem
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin_dir=$(cd "${FILES_API_BIN:-$repo/bin}" 2>/dev/null && pwd) || bin_dir=
serve_pid=
serve_pgid=
node_pid=
tail_pid=
tmp=

summary() { echo; echo "$1 passed, $2 failed"; }
die() { echo "sdk/run.sh: $*" >&2; summary 0 1; exit 1; }

stop_stack() {
    [ -n "$serve_pid" ] || return 0
    kill -TERM "$serve_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$serve_pid" 2>/dev/null || break
        sleep 0.1
    done
    # serve.sh runs in its own process group (setsid): whatever it left behind.
    [ "${serve_pgid:-}" = "$serve_pid" ] && kill -KILL -- "-$serve_pid" 2>/dev/null
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=
}
cleanup() {
    [ -n "$node_pid" ] && kill -TERM "$node_pid" 2>/dev/null
    [ -n "$tail_pid" ] && kill -TERM "$tail_pid" 2>/dev/null
    stop_stack
    if [ -n "$tmp" ] && [ "${FILES_API_KEEP_TMP:-}" != 1 ]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT
interrupted() { echo "sdk/run.sh: interrupted" >&2; summary 0 1; exit "$1"; }
trap 'interrupted 130' INT
trap 'interrupted 143' TERM

command -v node >/dev/null || die "node is not installed"
command -v npm >/dev/null || die "npm is not installed"
[ -n "$bin_dir" ] && [ -x "$bin_dir/filesctl" ] && [ -x "$bin_dir/files-fcgi" ] ||
    die "no built programs in ${FILES_API_BIN:-$repo/bin} (run make first)"

# 1. The SDK, exactly as locked. npm ci always wipes node_modules, so it only
#    runs when the installed tree differs from the lock: a second run needs no
#    network at all.
cd "$here" || die "cannot cd to $here"
if ! node -e '
    const fs = require("fs");
    const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8")).packages;
    const have = JSON.parse(fs.readFileSync("node_modules/.package-lock.json", "utf8")).packages;
    for (const [p, v] of Object.entries(lock)) {
        if (p === "") continue;
        if (!have[p] || have[p].version !== v.version || have[p].integrity !== v.integrity) process.exit(1);
        const pj = JSON.parse(fs.readFileSync(p + "/package.json", "utf8"));
        if (pj.version !== v.version) process.exit(1);
    }' 2>/dev/null; then
    echo "== npm ci"
    npm ci --no-audit --no-fund --prefer-offline || die "npm ci failed"
fi
echo "== openai $(node -p 'JSON.parse(require("fs").readFileSync("node_modules/openai/package.json","utf8")).version'), node $(node --version)"

# 2. The stack, on a port that was free a moment ago (retried if taken). A
#    small max_file_bytes so that the too-large test uploads 8 MiB, not 105.
tmp=$(mktemp -d /tmp/files-api-sdk.XXXXXX)
data=$tmp/data
log=$tmp/serve.log
max_file_bytes=8388608
printf 'max_file_bytes = %s\n' "$max_file_bytes" >"$tmp/files-api.conf"
free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
port=
for attempt in 1 2 3; do
    port=$(free_port) || die "cannot find a free port"
    FILES_API_BIN="$bin_dir" setsid "$repo/scripts/serve.sh" --port "$port" --data-dir "$data" \
        --workers 4 --config "$tmp/files-api.conf" >>"$log" 2>&1 </dev/null &
    serve_pid=$!
    up=
    for _ in $(seq 1 300); do
        if grep -q "listening on http://127.0.0.1:$port" "$log"; then up=1; break; fi
        # (read once setsid has surely run: the group to clean up as a last resort)
        serve_pgid=$(ps -o pgid= -p "$serve_pid" 2>/dev/null | tr -d ' ')
        kill -0 "$serve_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$up" ] && break
    stop_stack
    grep -qi "address already in use\|bind" "$log" || break
done
[ -n "$up" ] || { cat "$log" >&2; die "the stack did not start (attempt $attempt)"; }
echo "== stack on http://127.0.0.1:$port (data in $data)"

# 3. Keys: one account with a full key, a key without inference scope and a
#    revoked key; a second account for the isolation test.
ctl() { "$bin_dir/filesctl" --config "$tmp/files-api.conf" --data-dir "$data" "$@"; }
key_main=$(ctl keys create --account sdk-main --scopes '*' --name sdk-main 2>/dev/null) || die "keys create failed"
key_read=$(ctl keys create --account sdk-main --scopes 'files.read' --name sdk-read 2>/dev/null) || die "keys create failed"
key_revoked=$(ctl keys create --account sdk-main --scopes '*' --name sdk-revoked 2>/dev/null) || die "keys create failed"
key_other=$(ctl keys create --account sdk-other --scopes 'inference.*' --name sdk-other 2>/dev/null) || die "keys create failed"
revoked_id=$(ctl keys list | awk '$NF == "sdk-revoked" { print $1 }')
[ -n "$revoked_id" ] && ctl keys revoke "$revoked_id" >/dev/null 2>&1 || die "keys revoke failed"

# 4. The tests (TAP, so the summary has "# pass N" / "# fail N"). node runs in
#    the background and the script waits for it, so that INT/TERM reach the
#    trap at once (bash runs traps only between foreground commands).
echo "== node --test files.test.mjs"
test_log=$tmp/node-test.log
: >"$test_log"
FILES_API_BASE_URL="http://127.0.0.1:$port/v1" \
FILES_API_KEY="$key_main" FILES_API_KEY_READ_ONLY="$key_read" \
FILES_API_KEY_REVOKED="$key_revoked" FILES_API_KEY_OTHER="$key_other" \
FILES_API_TMP="$tmp" FILES_API_MAX_FILE_BYTES="$max_file_bytes" \
    node --test --test-reporter=tap --test-timeout=60000 files.test.mjs >"$test_log" 2>&1 &
node_pid=$!
tail -n +1 -f --pid="$node_pid" "$test_log" &
tail_pid=$!
wait "$node_pid"
status=$?
node_pid=
wait "$tail_pid" 2>/dev/null
tail_pid=

stop_stack
passed=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$test_log" | tail -n 1)
failed=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$test_log" | tail -n 1)
if [ -z "$passed" ] || [ -z "$failed" ]; then
    echo "sdk/run.sh: node --test printed no summary (exit $status)" >&2
    summary "${passed:-0}" $(( ${failed:-0} + 1 ))
    exit 1
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "sdk/run.sh: node --test exited $status with no failing test: counted as 1 failure" >&2
    failed=1
fi
if [ "$failed" -ne 0 ]; then
    echo "== last lines of serve.log"
    tail -n 40 "$log"
fi
summary "$passed" "$failed"
[ "$failed" -eq 0 ]
