#!/usr/bin/env bash
# load_server.sh - load test of `hearth serve`: requests/s and p50/p95 latency
# of short chat requests with 1, 4 and 16 concurrent clients (curl processes).
#
#   bench/load_server.sh [MODEL]
#
# Environment (defaults in brackets):
#   HEARTH_BIN   the hearth program        [build/release/hearth, else build/ci/hearth]
#   PARALLEL     --parallel slots          [4]
#   THREADS      -t                        [2]
#   CLIENTS      client counts to run      ["1 4 16"]
#   REQUESTS     requests per client count [48]
#   MAX_TOKENS   tokens per answer         [16]
#   STREAM       1: streaming requests     [0]
# MODEL defaults to ../shared's tiny-llama (a 2-layer model: the figures then
# measure the server's own overhead more than the model).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-../shared/conformance/models/tiny-llama/tiny-llama.Q8_0.gguf}
bin=${HEARTH_BIN:-}
if [ -z "$bin" ]; then
  for b in build/release/hearth build/ci/hearth build/debug/hearth; do
    [ -x "$b" ] && { bin=$b; break; }
  done
fi
[ -x "${bin:-}" ] || { echo "load_server.sh: build hearth first (or set HEARTH_BIN)" >&2; exit 1; }
[ -r "$model" ] || { echo "load_server.sh: no model at $model" >&2; exit 1; }
parallel=${PARALLEL:-4}
threads=${THREADS:-2}
requests=${REQUESTS:-48}
max_tokens=${MAX_TOKENS:-16}
stream=${STREAM:-0}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin" serve -m "$model" --port 0 --parallel "$parallel" -t "$threads" --queue 64 \
  --chat-template chatml 2>"$work/server.log" &
pid=$!
port=
for _ in $(seq 1 600); do
  port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/server.log" | head -n1)
  [ -n "$port" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/server.log" >&2; exit 1; }
url="http://127.0.0.1:$port/v1/chat/completions"

# One client: requests one after another, each line "<seconds> <status>".
client() { # client <id> <count>
  local id=$1 count=$2 i
  for i in $(seq 1 "$count"); do
    printf '{"messages":[{"role":"user","content":"Hello number %d from client %d, how are you?"}],"max_tokens":%d,"temperature":0,"stream":%s}' \
      "$i" "$id" "$max_tokens" "$([ "$stream" = 1 ] && echo true || echo false)" >"$work/body.$id"
    curl -s -N -o /dev/null -w '%{time_total} %{http_code}\n' -H 'Content-Type: application/json' \
      --data-binary "@$work/body.$id" "$url"
  done >"$work/times.$id"
}

# A warm-up request (first-use page faults).
curl -s -o /dev/null -H 'Content-Type: application/json' \
  -d '{"messages":[{"role":"user","content":"hi"}],"max_tokens":4}' "$url"

printf '%s\n' "model $(basename "$model"), --parallel $parallel, -t $threads, max_tokens $max_tokens, stream $stream, $requests requests per row"
printf '%-8s %10s %10s %10s %8s\n' clients 'req/s' 'p50 ms' 'p95 ms' errors
for c in ${CLIENTS:-1 4 16}; do
  rm -f "$work"/times.*
  per=$(( (requests + c - 1) / c ))
  start=$(date +%s.%N)
  for id in $(seq 1 "$c"); do client "$id" "$per" & done
  wait $(jobs -p | grep -v "^$pid\$") 2>/dev/null || true
  end=$(date +%s.%N)
  cat "$work"/times.* >"$work/all"
  total=$(wc -l <"$work/all")
  errors=$(awk '$2 != 200' "$work/all" | wc -l)
  sort -n "$work/all" | awk -v n="$total" -v t0="$start" -v t1="$end" -v c="$c" -v e="$errors" '
    { v[NR] = $1 }
    END {
      p50 = v[int((n - 1) * 0.50) + 1]; p95 = v[int((n - 1) * 0.95) + 1]
      printf "%-8d %10.2f %10.1f %10.1f %8d\n", c, n / (t1 - t0), p50 * 1000, p95 * 1000, e
    }'
done
