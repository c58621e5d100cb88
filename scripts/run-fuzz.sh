#!/usr/bin/env bash
# Runs every libFuzzer target in build/fuzz for FUZZ_SECONDS (default 30)
# each, on a scratch copy of its committed seed corpus with its dictionary.
# A target passes when libFuzzer ends without a crash, leak, timeout or oracle
# mismatch (all of which abort). Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

seconds=${FUZZ_SECONDS:-30}
passed=0
failed=0
work=$(mktemp -d /tmp/files-api-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

for bin in build/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=${bin##*/fuzz_}
    mkdir -p "$work/$name"
    [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/$name/"
    dict=()
    [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
    log=$work/$name.log
    if "$bin" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$work/" -print_final_stats=1 "$work/$name" >"$log" 2>&1; then
        runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
        cov=$(grep -E '^#[0-9]+.*cov:' "$log" | tail -n 1 | sed -E 's/.*cov: ([0-9]+).*/\1/')
        echo "fuzz $name: ok, ${runs:-?} executions in ${seconds}s, coverage ${cov:-?} edges"
        passed=$((passed + 1))
    else
        echo "fuzz $name: FAILED"
        tail -n 40 "$log"
        for crash in "$work"/crash-* "$work"/leak-* "$work"/timeout-*; do
            [ -e "$crash" ] && echo "reproducer: $(od -An -c "$crash" | head -n 5)"
        done
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
