#!/usr/bin/env bash
# Runs every test suite and ends with one line "N passed, N failed".
#   scripts/run-tests.sh BIN_DIR [SUITE...]
# Suites: unit, integration (behind lighttpd), servers (the integration suite
# again behind Apache, nginx, lighttpd-spawned workers and Apache mod_fcgid),
# sdk, fuzz, soak (SOAK_SECONDS, SOAK_CLIENTS), and sanitize:DIR (unit and integration again with the sanitizer
# build in DIR). Default: unit integration.
# Each suite prints its own "N passed, N failed" as its last such line; a suite
# that crashes or prints no count, or runs past SUITE_SECONDS (1200; fuzz and
# soak get their own running time on top), counts as one failure.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

bin_dir=${1:?usage: run-tests.sh BIN_DIR [SUITE...]}
shift
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(unit integration)
passed=0
failed=0
log_dir=$(mktemp -d /tmp/files-api-tests.XXXXXX)
suite_seconds=${SUITE_SECONDS:-1200} # each suite takes 2-4 minutes here

# Runs one suite command, echoing its output, and adds its counts to the totals.
# $extra_seconds (for suites that run for a time they are given) adds to its limit.
run_suite() {
    local name=$1; shift
    local log=$log_dir/${name//\//_}.log status counts pid interrupted="" signalled
    local limit=$((suite_seconds + ${extra_seconds:-0})) started=$SECONDS
    echo "== $name"
    # The suite writes to its log, which is followed until the suite itself
    # exits: a process it left behind holding its output cannot hold up the
    # run (a pipe would stay open). Over its limit, timeout stops it and its
    # process group (timeout's own). SIGINT and SIGQUIT get back the default
    # actions that a background job loses; Ctrl-C reaches the suite through
    # us, once, and the follower (a background job: it ignores SIGINT) shows
    # the suite's last words.
    : >"$log"
    env --default-signal=INT,QUIT timeout -k 30 "$limit" "$@" >"$log" 2>&1 &
    pid=$!
    tail -n +1 -s 0.2 -f --pid="$pid" "$log" &
    # (to timeout's child, the suite: timeout would pass it on twice)
    trap 'interrupted=1 signalled=1; pkill -INT -P "$pid"' INT
    while :; do
        signalled=
        wait "$pid"
        status=$?
        [ -n "$signalled" ] || break # else the wait was cut short by our trap
    done
    trap - INT
    wait $! # the follower: the rest of the log
    if [ -n "$interrupted" ]; then
        rm -rf "$log_dir"
        exit 130
    fi
    case $status in 124|137) echo "== $name: stopped after $limit s" ;; esac
    echo "== $name: $((SECONDS - started)) s"
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -z "$counts" ]; then
        echo "== $name: no result line (exit $status): counted as 1 failure"
        failed=$((failed + 1))
        return
    fi
    local p f
    p=$(echo "$counts" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$counts" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "== $name: exit $status with no failure counted: counted as 1 failure"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
}

for suite in "${suites[@]}"; do
    case $suite in
    unit)
        for t in "$bin_dir"/test_*; do
            [ -x "$t" ] && run_suite "unit/$(basename "$t")" "$t"
        done ;;
    integration)
        run_suite integration env FILES_API_BIN="$(cd "$bin_dir" && pwd)" \
            python3 tests/integration/run.py ;;
    servers)
        for server in apache nginx lighttpd-spawn apache-fcgid; do
            run_suite "integration/$server" env FILES_API_BIN="$(cd "$bin_dir" && pwd)" \
                FILES_API_SERVER="$server" python3 tests/integration/run.py
        done ;;
    sdk)
        run_suite sdk/node env FILES_API_BIN="$(cd "$bin_dir" && pwd)" tests/sdk/run.sh
        run_suite sdk/python-wire env FILES_API_BIN="$(cd "$bin_dir" && pwd)" \
            python3 tests/sdk/sdk_python_wire.py ;;
    fuzz)
        targets=(build/fuzz/fuzz_*)
        extra_seconds=$(( ${#targets[@]} * ${FUZZ_SECONDS:-30} )) run_suite fuzz scripts/run-fuzz.sh ;;
    soak)
        extra_seconds=${SOAK_SECONDS:-60} run_suite soak env FILES_API_BIN="$(cd "$bin_dir" && pwd)" \
            python3 tests/soak/soak.py "${SOAK_SECONDS:-60}" "${SOAK_CLIENTS:-16}" ;;
    sanitize:*)
        san=${suite#sanitize:}
        for t in "$san"/test_*; do
            [ -x "$t" ] && run_suite "sanitize/unit/$(basename "$t")" "$t"
        done
        run_suite sanitize/integration env FILES_API_BIN="$(cd "$san" && pwd)" \
            ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 python3 tests/integration/run.py ;;
    *)
        echo "run-tests.sh: unknown suite $suite" >&2; exit 2 ;;
    esac
done
rm -rf "$log_dir"
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
