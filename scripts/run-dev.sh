#!/usr/bin/env bash
# `make run`: serves on the embedded default (lighttpd on 127.0.0.1:8080, data
# in ./var, 4 workers) and prints a ready-to-use API key and a curl example.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

data_dir=${DATA_DIR:-./var}
port=${PORT:-8080}
filesctl=${FILES_API_BIN:-bin}/filesctl
mkdir -p "$data_dir"
chmod 0700 "$data_dir"
key_file=$data_dir/dev-key
# The dev key lives beside the database it was made in, and is the account
# dev's active key labelled dev-key: a new database, or a revoked key, gets a
# new one.
dev_key_active() {
    "$filesctl" --data-dir "$data_dir" keys list 2>/dev/null |
        awk '$2 == "dev" && $3 == "active" && $NF == "dev-key" { found = 1 } END { exit !found }'
}
if [ -e "$key_file" ] && [ ! -f "$key_file" ]; then
    echo "make run: $key_file, where the dev key is kept, is not a file" >&2
    exit 1
fi
if [ ! -s "$key_file" ] || [ ! -e "$data_dir/files.db" ] || ! dev_key_active; then
    if ! (umask 077 && "$filesctl" --data-dir "$data_dir" keys create --account dev \
        --scopes '*' --name dev-key >"$key_file.new"); then
        rm -f "$key_file.new"
        echo "make run: no API key could be made (the reason is above)" >&2
        exit 1
    fi
    mv -T "$key_file.new" "$key_file"
fi
key=$(cat "$key_file")
# Printed by serve.sh once it answers: not when it cannot start (port taken).
banner=$(cat <<MSG
API key (kept in $key_file):
  $key
Try:
  printf '%s\n' '{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}' > requests.jsonl
  curl http://127.0.0.1:$port/v1/files -H "Authorization: Bearer $key" -F purpose="batch" -F file=@requests.jsonl
  curl http://127.0.0.1:$port/v1/files -H "Authorization: Bearer $key"
MSG
)
# Through a pipe: in serve.sh's arguments, the key would show in any user's ps.
exec scripts/serve.sh --port "$port" --data-dir "$data_dir" --workers 4 \
    --banner-file <(printf '%s\n' "$banner")
