#!/usr/bin/env bash
# bench/cascade/run.sh - the cascade's cost-versus-quality curve (docs/cascade.md).
#
# 1. the router's held-out RouteLLM prompts (MMLU + GSM8K, labeled with whether
#    Mixtral = local tier and GPT-4 = cloud tier answered right), scored by the
#    learned router, token-counted with Llama 3's tokenizer (bench_cascade prepare);
# 2. the curve over all of them at POINTS thresholds, from everything local to
#    everything in the cloud, beside the random router and the oracle (curve);
# 3. unless GATEWAY=0: a sample of them through real processes at each threshold:
#    a gateway `hearth serve --router ... --config ...` in front of a second
#    `hearth serve` as the cloud tier, with `hearth ledger report --json` giving
#    share, cost and savings, and every ledger row checked against step 2 (send, join);
# 4. the plot (gnuplot; without it the CSVs are still written).
#
# usage: bench/cascade/run.sh            (from anywhere; a few minutes on 2 cores)
# environment: BUILD (build dir, default build/cascade-release), SHARED (../shared),
#   OUT (bench/cascade/results), ROUTER (data/router/default.rtr), PRICE_IN/PRICE_OUT
#   (cloud $ per million tokens: 2.5 / 10), GNUPLOT (gnuplot), POINTS (21), SAMPLE_PCT (15: share of the
#   prompts sent through the gateway), GATEWAY_STEP (2: every second threshold of the
#   curve goes through the gateway), MMLU_COMPLETION (64 tokens), GATEWAY (1)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build/cascade-release}
SHARED=${SHARED:-$ROOT/../shared}
OUT=${OUT:-$ROOT/bench/cascade/results}
ROUTER=${ROUTER:-$ROOT/data/router/default.rtr}
PRICE_IN=${PRICE_IN:-2.5}
PRICE_OUT=${PRICE_OUT:-10}
POINTS=${POINTS:-21}
SAMPLE_PCT=${SAMPLE_PCT:-15}
GATEWAY_STEP=${GATEWAY_STEP:-2}
MMLU_COMPLETION=${MMLU_COMPLETION:-64}
GATEWAY=${GATEWAY:-1}
GNUPLOT=${GNUPLOT:-gnuplot}
ROUTELLM=$SHARED/data/routing/routellm
VOCAB=$SHARED/conformance/tokenizer/ggml-vocab-llama-bpe.gguf

for f in "$ROUTELLM/gsm8k/gsm8k_responses.csv" "$VOCAB" "$ROUTER"; do
  [ -r "$f" ] || { echo "run.sh: $f is missing" >&2; exit 1; }
done

if [ ! -x "$BUILD/hearth" ] || [ ! -x "$BUILD/bench_cascade" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release > /dev/null
fi
cmake --build "$BUILD" -j2 --target hearth_cli bench_cascade > /dev/null
HEARTH=$BUILD/hearth
BENCH=$BUILD/bench_cascade

WORK=$(mktemp -d /tmp/hearth-cascade.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$OUT"
LOG=$OUT/cascade_run.txt # what the outputs came from, and the steps' summaries
{
  echo "bench/cascade/run.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2> /dev/null || echo unknown)"
  echo "router $(basename "$ROUTER"), cloud \$$PRICE_IN / \$$PRICE_OUT per million input / output tokens, local \$0"
  echo "points $POINTS; gateway: a $SAMPLE_PCT % sample at 1 in $GATEWAY_STEP of the thresholds; MMLU completion $MMLU_COMPLETION tokens"
} > "$LOG"
note() { tee -a "$LOG"; } # a step's summary lines: shown, and kept in $LOG

echo "== workload: the router's held-out prompts"
"$BENCH" prepare --routellm "$ROUTELLM" --router "$ROUTER" --vocab "$VOCAB" \
  --mmlu-completion "$MMLU_COMPLETION" -o "$WORK/workload.jsonl" 2>&1 | note
"$BENCH" curve --workload "$WORK/workload.jsonl" --price-in "$PRICE_IN" --price-out "$PRICE_OUT" \
  --points "$POINTS" -o "$OUT/cascade_curve.csv" 2>&1 | note
echo "wrote $OUT/cascade_curve.csv"

# Starts `hearth serve` (model, then more flags) in the background with its log in
# $WORK/$name.log; sets PORT and SERVER_PID once it answers /health.
start_server() {
  local name=$1 model=$2
  shift 2
  "$HEARTH" serve -m "$model" --host 127.0.0.1 --port 0 -t 1 --chat-template llama3 "$@" \
    2> "$WORK/$name.log" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  PORT=
  for _ in $(seq 1 300); do
    PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/$name.log" | head -1)
    if [ -n "$PORT" ] && curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"; then return 0; fi
    kill -0 "$SERVER_PID" 2> /dev/null || break
    sleep 0.1
  done
  echo "run.sh: $name did not start:" >&2
  cat "$WORK/$name.log" >&2
  exit 1
}

stop_server() {
  kill "$1" 2> /dev/null || true
  wait "$1" 2> /dev/null || true
}

if [ "$GATEWAY" = 1 ]; then
  echo "== gateway: ${SAMPLE_PCT} % of the prompts at each threshold, through two hearth serve"
  "$BENCH" model -o "$WORK/local.gguf" --vocab "$VOCAB" --seed 1
  "$BENCH" model -o "$WORK/cloud.gguf" --vocab "$VOCAB" --seed 2
  "$BENCH" sample --workload "$WORK/workload.jsonl" --pct "$SAMPLE_PCT" -o "$WORK/sample.jsonl" 2>&1 | note
  start_server cloud "$WORK/cloud.gguf"
  CLOUD_PORT=$PORT
  header=--header
  : > "$WORK/gateway.csv"
  # every GATEWAY_STEP-th threshold of the curve (columns 1 and 2, header skipped)
  while IFS=, read -r target thr; do
    cat > "$WORK/gateway.json" << EOF
{"local": {"price_per_mtok": {"input": 0, "output": 0}},
 "routing": {"router_threshold": $thr, "confidence_check": false},
 "privacy": {"actions": {"EMAIL": "allow", "PHONE": "allow", "CREDIT_CARD": "allow",
             "IBAN": "allow", "SSN": "allow", "IP": "allow", "DOB": "allow"}}}
EOF
    ledger=$WORK/ledger-$target.db
    start_server "gateway-$target" "$WORK/local.gguf" --config "$WORK/gateway.json" \
      --cloud-url "http://127.0.0.1:$CLOUD_PORT" --cloud-model bench-cloud \
      --cloud-price "$PRICE_IN,$PRICE_OUT" --router "$ROUTER" --ledger "$ledger" --ledger-prompts
    echo "threshold $thr (target $target local):" | note
    "$BENCH" send --url "http://127.0.0.1:$PORT" --workload "$WORK/sample.jsonl" 2>&1 | note
    stop_server "$SERVER_PID"
    "$HEARTH" ledger report --db "$ledger" --json > "$WORK/report.json"
    "$BENCH" join --ledger "$ledger" --report "$WORK/report.json" --workload "$WORK/sample.jsonl" \
      --threshold "$thr" --target "$target" --price-in "$PRICE_IN" --price-out "$PRICE_OUT" \
      $header 2>&1 >> "$WORK/gateway.csv" | note
    header=
    if [ "$target" = 0.80 ]; then "$HEARTH" ledger report --db "$ledger" > "$OUT/ledger_report_80.txt"; fi
  done < <(tail -n +2 "$OUT/cascade_curve.csv" | cut -d, -f1,2 | awk -v s="$GATEWAY_STEP" '(NR - 1) % s == 0')
  cp "$WORK/gateway.csv" "$OUT/cascade_gateway.csv"
  echo "wrote $OUT/cascade_gateway.csv"
fi

if command -v "$GNUPLOT" > /dev/null; then
  gateway_csv=$OUT/cascade_gateway.csv
  [ "$GATEWAY" = 1 ] || gateway_csv=
  "$GNUPLOT" -e "curve='$OUT/cascade_curve.csv'; gateway='$gateway_csv'; out='$OUT/cascade.png'" \
    "$ROOT/bench/cascade/plot.gp"
  echo "wrote $OUT/cascade.png"
else
  echo "run.sh: $GNUPLOT is not installed (Debian: apt-get install gnuplot-nox): the CSVs are written, no plot" >&2
fi
