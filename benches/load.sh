#!/usr/bin/env bash
# Load test: LOAD_CONNECTIONS (1000) keep-alive clients for LOAD_DURATION (60 s) against
# the release binary and the embedded S3, mixing redirects, /update, /metrics and /list
# (benches/mixed.lua). Passes only with zero failed requests (socket errors, timeouts,
# answers other than 2xx/3xx) and no file lost from the registry; records peak RSS.
# Bounded: wrk stops after LOAD_DURATION, every process started here is stopped on exit.
# Results go to benches/LOAD.md. `just load` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${LOAD_OBJECTS:-2000}
CONNS=${LOAD_CONNECTIONS:-1000}
DURATION=${LOAD_DURATION:-60s}
TTL=${LOAD_VERIFY_TTL:-0}
OUT=${LOAD_RESULTS:-$ROOT/benches/LOAD.md}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-minioadmin}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-minioadmin}

log() { printf '[load %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
# 1000 client sockets here plus 1000 server sockets in the service.
ulimit -n 65536 2>/dev/null || ulimit -n 8192 2>/dev/null || true

cargo build --release -q -p local-s3 -p parparchik -p parparchik-bench
BIN=$ROOT/target/release
WORK=$(mktemp -d /tmp/parparchik-load.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL TIMEOUT_S
  for _ in $(seq 1 $(( $2 * 20 ))); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ] && return 0
    sleep 0.05
  done
  return 1
}

S3_PORT=$(free_port)
"$BIN/local-s3" --addr "127.0.0.1:$S3_PORT" --data "$WORK/s3" \
  --bucket public-bucket:public --bucket private-bucket >"$WORK/s3.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null && break; sleep 0.05; done
log "seeding $N objects"
"$BIN/bench-seed" --objects "$N" --endpoint "http://127.0.0.1:$S3_PORT" --routes "$WORK/routes.txt" >/dev/null

APP_PORT=$(free_port)
PARPARCHIK_PUBLIC_BUCKET=public-bucket PARPARCHIK_PRIVATE_BUCKET=private-bucket \
PARPARCHIK_HOST=127.0.0.1 PARPARCHIK_PORT=$APP_PORT S3_ENDPOINT="http://127.0.0.1:$S3_PORT" \
PARPARCHIK_VERIFY_TTL=$TTL PARPARCHIK_SYNC_INTERVAL=0 \
  "$BIN/parparchik" >"$WORK/service.log" 2>&1 &
APP_PID=$!
PIDS+=($APP_PID)
wait_http "http://127.0.0.1:$APP_PORT/readiness" 60 || { log "service not ready"; tail "$WORK/service.log"; exit 1; }
count() { curl -s "http://127.0.0.1:$APP_PORT/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["file_count"])'; }
BEFORE=$(count)

log "wrk -t2 -c$CONNS -d$DURATION (mixed.lua) against parparchik, VERIFY_TTL=$TTL"
LOAD_ROUTES=$WORK/routes.txt wrk -t2 -c"$CONNS" -d"$DURATION" --timeout 10s --latency \
  -s "$ROOT/benches/mixed.lua" "http://127.0.0.1:$APP_PORT" | tee "$WORK/wrk.txt"
AFTER=$(count)
HWM=$(awk '/VmHWM/ {print $2, $3}' "/proc/$APP_PID/status")
REQS=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
RPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
ERRS=$(grep -E 'Socket errors|Non-2xx' "$WORK/wrk.txt" || true)
P50=$(awk '$1=="50%" {print $2}' "$WORK/wrk.txt")
P99=$(awk '$1=="99%" {print $2}' "$WORK/wrk.txt")
S3_UNAVAILABLE=$(curl -s "http://127.0.0.1:$APP_PORT/metrics" | awk -F' ' '/^parparchik_s3_requests_total\{.*outcome="unavailable"/ {s+=$2} END {print s+0}')

OK=yes
[ -z "$ERRS" ] || OK=no
[ "$BEFORE" = "$AFTER" ] && [ "$BEFORE" = "$N" ] || OK=no
{
  echo "# Load test"
  echo
  echo "\`bash benches/load.sh\` (\`just load\`) on $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), load average before the run as the machine had it."
  echo
  echo "| setting | value |"
  echo "|---|---|"
  echo "| clients | $CONNS keep-alive connections, wrk -t2, $DURATION, benches/mixed.lua (90% routes, 5% /update, 4.9% /metrics, 0.1% /list) |"
  echo "| objects | $N (half public, half private), PARPARCHIK_VERIFY_TTL=$TTL |"
  echo "| requests | $REQS ($RPS req/s), p50 $P50, p99 $P99 |"
  echo "| failed requests | ${ERRS:-none} |"
  echo "| registry before / after | $BEFORE / $AFTER files |"
  echo "| S3 calls that failed as unavailable | $S3_UNAVAILABLE |"
  echo "| parparchik peak RSS (VmHWM) | $HWM |"
  echo "| verdict | $( [ $OK = yes ] && echo 'pass: no failed request, no file lost' || echo '**FAIL**') |"
} >"$OUT"
cat "$OUT"
[ $OK = yes ]
