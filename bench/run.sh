#!/usr/bin/env bash
# The benchmark suite (`make bench`): builds the baselines, starts every stack
# it needs on 127.0.0.1 (free ports, temporary directories), runs each case
# several times interleaved with its baseline, stops everything, and prints the
# results table, also written to bench/results.md with a chart of the ratios in
# bench/results.png. What each case measures: docs/bench.md.
#
#   bench/run.sh [BIN_DIR]        BIN_DIR holds files-fcgi and filesctl (default: bin)
#
# Environment: BENCH_ROUNDS (5), BENCH_WRK_SECONDS (3), BENCH_WORKERS (4),
# BENCH_JSONL_MB (200), BENCH_DELETE_COUNT (200), BENCH_ONLY (comma-separated
# cases), BENCH_KEEP_TMP=1 (keep the scratch directory and its raw.json and
# server logs), BENCH_OUT (bench),
# BENCH_NICE=N (run the bench and everything it starts at niceness N, e.g. -10
# on a machine shared with other jobs; off by default).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bin_dir=$(cd "${1:-$repo/bin}" && pwd)
out_dir=${BENCH_OUT:-$here}

for prog in files-fcgi filesctl; do
    [ -x "$bin_dir/$prog" ] || { echo "bench: $bin_dir/$prog not found (run make)" >&2; exit 2; }
done

# Tools, from Debian, installed when missing.
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need gnuplot gnuplot-nox
need wrk wrk
need curl curl
need lighttpd lighttpd
need spawn-fcgi spawn-fcgi
need multiwatch multiwatch
need sqlite3 sqlite3
need python3 python3
need cc gcc
[ -e /usr/include/fcgiapp.h ] || missing+=(libfcgi-dev)
[ -e /usr/include/cjson/cJSON.h ] || missing+=(libcjson-dev)
[ -e /usr/include/xxhash.h ] || missing+=(libxxhash-dev)
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y "${missing[@]}" >&2; then
        apt-get update >&2
        apt-get install -y "${missing[@]}" >&2
    fi
fi

if [ -n "${BENCH_NICE:-}" ]; then
    renice -n "$BENCH_NICE" -p $$ >/dev/null  # inherited by everything started below
fi

tmp=$(mktemp -d /tmp/files-api-bench.XXXXXX)
driver=
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$driver" ] && kill -0 "$driver" 2>/dev/null; then
        kill -TERM "$driver" 2>/dev/null || true  # bench.py stops its stacks on SIGTERM
        wait "$driver" 2>/dev/null || true
    fi
    if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then
        echo "bench: scratch kept in $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The baselines' programs.
cc -O2 -o "$tmp/sink" "$here/sink.c" -lfcgi
cc -std=c11 -D_GNU_SOURCE -O2 -I"$repo/include" -o "$tmp/jsonl_bench" "$here/jsonl_bench.c" \
    "$repo/src/jsonl.c" "$repo/src/jsonl_ids.c" -lcjson -lxxhash

only_args=()
[ -n "${BENCH_ONLY:-}" ] && only_args=(--only "$BENCH_ONLY")
python3 "$here/bench.py" --bin-dir "$bin_dir" --sink "$tmp/sink" \
    --jsonl-bench "$tmp/jsonl_bench" --tmp "$tmp" --out "$tmp/raw.json" \
    --rounds "${BENCH_ROUNDS:-5}" --workers "${BENCH_WORKERS:-4}" \
    --wrk-seconds "${BENCH_WRK_SECONDS:-3}" --delete-count "${BENCH_DELETE_COUNT:-200}" \
    --jsonl-mb "${BENCH_JSONL_MB:-200}" "${only_args[@]}" &
driver=$!
wait "$driver"
driver=

mkdir -p "$out_dir"
python3 "$here/report.py" "$tmp/raw.json" "$out_dir/results.md" "$tmp/ratios.dat" results.png
gnuplot -e "datafile='$tmp/ratios.dat'; outfile='$out_dir/results.png'" "$here/plot.gp"
echo
echo "bench: wrote $out_dir/results.md and $out_dir/results.png"
