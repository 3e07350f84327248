#!/usr/bin/env bash
# Bucket notifications against verifying every redirect (issue #15): the spread workload
# (benches/spread.lua: each request a random one of N routes) on two services side by
# side against one embedded S3 (local-s3, release build):
#   events  PARPARCHIK_EVENTS_TOKEN set, the S3 sending its notifications to it
#           (local-s3 --notify), PARPARCHIK_EVENTS_VERIFY_TTL=300 (default), a /list
#           once the seeding's events are in so that a sync agrees with them;
#   ttl0    no events, PARPARCHIK_VERIFY_TTL=0 (the default: a HEAD per redirect).
# Each round runs wrk on both, one after the other; reported: req/s (median and range
# over the rounds), p99, and S3 calls per redirect from each service's own counters
# (parparchik_redirect_s3_calls_total / parparchik_redirects_total, over all rounds).
#
#   bash benches/events.sh
#
# Settings (environment): BENCH_OBJECTS=10000 BENCH_RUNS=3 BENCH_DURATION=10s
# BENCH_CONNECTIONS=64 BENCH_THREADS=2 BENCH_NO_BUILD=0 (1: use target/release as it
# is; CARGO_TARGET_DIR is honoured). Needs wrk (benches/run.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TAG=bench-events
KEEP=${BENCH_KEEP:-0}
KEEP_VAR=BENCH_KEEP
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
N=${BENCH_OBJECTS:-10000}
RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-minioadmin}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-minioadmin}
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"

command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  log "building release binaries"
  cargo build --release -q -p local-s3 -p parparchik -p parparchik-bench
fi

TOKEN=bench-events-token-$RANDOM$RANDOM$RANDOM
S3_PORT=$(free_port)
EV_PORT=$(free_port)
T0_PORT=$(free_port)
S3=http://127.0.0.1:$S3_PORT
EV=http://127.0.0.1:$EV_PORT
T0=http://127.0.0.1:$T0_PORT

LOCAL_S3_NOTIFY_TOKEN=$TOKEN "$BIN/local-s3" --addr "127.0.0.1:$S3_PORT" --data "$WORK/s3" \
  --bucket public-bucket:public --bucket private-bucket --notify "$EV/events" >"$WORK/s3.log" 2>&1 &
PIDS+=($!)

# start NAME PORT ENV...: a service against the S3, its log in $WORK/NAME.log.
start() {
  local name=$1 port=$2
  shift 2
  env PARPARCHIK_PUBLIC_BUCKET=public-bucket PARPARCHIK_PRIVATE_BUCKET=private-bucket \
    S3_ENDPOINT="$S3" PARPARCHIK_HOST=127.0.0.1 PARPARCHIK_PORT="$port" \
    PARPARCHIK_SYNC_INTERVAL=0 "$@" "$BIN/parparchik" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
}
ready() {
  local i
  for i in $(seq 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/readiness")" = 200 ] && return
    sleep 0.05
  done
  die "$1 not ready: $(tail -3 "$WORK"/*.log)"
}
metric() { curl -s "$1/metrics" | awk -v s="$2" '$1 == s { print $2 }'; }

for _ in $(seq 100); do curl -s -o /dev/null "$S3" && break; sleep 0.05; done
# Seeded before the services start: their start-up sync registers every object (the
# emitter retries each event for a few seconds, so some of the seeding's events may
# still arrive once the events service listens; they change nothing).
log "seeding $N objects"
"$BIN/bench-seed" --objects "$N" --endpoint "$S3" --routes "$WORK/routes.txt" >"$WORK/seed.out"
tail -1 "$WORK/seed.out" >&2
start events "$EV_PORT" PARPARCHIK_EVENTS_TOKEN="$TOKEN"
start ttl0 "$T0_PORT" PARPARCHIK_VERIFY_TTL=0
ready "$EV"
ready "$T0"

# One upload per bucket: events flow for both; then a sync that agrees with them.
"$BIN/bench-seed" --objects 2 --first "$N" --endpoint "$S3" >/dev/null
series='parparchik_events_total{type="created",outcome="applied"}'
applied=0
for _ in $(seq 600); do
  applied=$(metric "$EV" "$series")
  [ "${applied%.*}" -ge 2 ] 2>/dev/null && break
  sleep 0.05
done
log "events applied: $applied"
curl -s -o /dev/null "$EV/list"
curl -s -o /dev/null "$T0/list"
trusted=$(curl -s "$EV/status" | grep -o '"events_trusted":[a-z]*')
log "events service: $trusted"

# Event throughput: M uploads, each event delivered one at a time (as MinIO's webhook
# target does) and answered once its change is in a manifest of about N/2 entries.
M=${BENCH_EVENTS:-200}
before=$(metric "$EV" "$series")
t_start=$(date +%s%N)
"$BIN/bench-seed" --objects "$M" --first $((N + 2)) --endpoint "$S3" --concurrency 1 >/dev/null
t_put=$(date +%s%N)
for _ in $(seq 3000); do
  now_applied=$(metric "$EV" "$series")
  [ $(( ${now_applied%.*} - ${before%.*} )) -ge "$M" ] 2>/dev/null && break
  sleep 0.02
done
t_end=$(date +%s%N)
EVENTS_RATE=$(awk -v m="$M" -v ns=$((t_end - t_start)) 'BEGIN { printf "%.0f", m / (ns / 1e9) }')
log "$M events applied in $(( (t_end - t_start) / 1000000 )) ms (uploads alone $(( (t_put - t_start) / 1000000 )) ms): $EVENTS_RATE events/s"
# The new objects are announced; a sync agrees again before the load.
curl -s -o /dev/null "$EV/list"

declare -A RPS P99
for run in $(seq "$RUNS"); do
  for name in events ttl0; do
    url=$EV
    [ $name = ttl0 ] && url=$T0
    out=$(BENCH_ROUTES="$WORK/routes.txt" BENCH_THREADS=$THREADS wrk -t"$THREADS" -c"$CONNS" \
      -d"$DURATION" --latency -s benches/spread.lua "$url" 2>&1)
    rps=$(echo "$out" | awk '/^Requests\/sec/ { printf "%d", $2 }')
    p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
    RPS[$name]+="$rps "
    P99[$name]+="$p99 "
    log "run $run $name: $rps req/s, p99 $p99"
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] " (" a[1] "–" a[NR] ")" }'; }
per_redirect() {
  local calls redirects
  calls=$(metric "$1" parparchik_redirect_s3_calls_total)
  redirects=$(metric "$1" parparchik_redirects_total)
  awk -v c="$calls" -v r="$redirects" 'BEGIN { printf "%.4f (%d calls / %d redirects)", (r > 0 ? c / r : 0), c, r }'
}
echo
echo "| service | req/s, median (range) over $RUNS runs | p99 per run | S3 calls per redirect |"
echo "|---|---|---|---|"
echo "| events on (PARPARCHIK_EVENTS_VERIFY_TTL=300, $trusted) | $(echo "${RPS[events]}" | median) | ${P99[events]} | $(per_redirect "$EV") |"
echo "| no events, PARPARCHIK_VERIFY_TTL=0 | $(echo "${RPS[ttl0]}" | median) | ${P99[ttl0]} | $(per_redirect "$T0") |"
echo
echo "spread over $N objects, wrk -t$THREADS -c$CONNS -d$DURATION, local-s3 (release) on the same machine"
echo "events applied one at a time (sequential webhook delivery, $M uploads): $EVENTS_RATE events/s"
