#!/usr/bin/env bash
# `make run`: serves on the embedded default (lighttpd on 127.0.0.1:8080, data
# in ./var, 4 workers) and prints a ready-to-use API key and a curl example.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

data_dir=${DATA_DIR:-./var}
port=${PORT:-8080}
mkdir -p "$data_dir"
chmod 0700 "$data_dir"
key_file=$data_dir/dev-key
# The dev key lives beside the database it was made in; a new database gets a new key.
if [ ! -s "$key_file" ] || [ ! -e "$data_dir/files.db" ]; then
    (umask 077 && bin/filesctl --data-dir "$data_dir" keys create --account dev --scopes '*' \
        --name dev-key >"$key_file" 2>/dev/null)
fi
key=$(cat "$key_file")
cat <<MSG
API key (kept in $key_file):
  $key
Try:
  printf '%s\n' '{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}' > requests.jsonl
  curl http://127.0.0.1:$port/v1/files -H "Authorization: Bearer $key" -F purpose="batch" -F file=@requests.jsonl
  curl http://127.0.0.1:$port/v1/files -H "Authorization: Bearer $key"
MSG
exec scripts/serve.sh --port "$port" --data-dir "$data_dir" --workers 4
